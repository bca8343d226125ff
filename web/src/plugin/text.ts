// The plugin's wording (Simplified Chinese) for the codes the API returns.

export const REPORT_STATUS: Record<string, string> = {
  final: "已出终审报告",
  amended: "报告已修订",
  preliminary: "初步报告",
  none: "未出报告",
  pending: "未出报告",
};

export const WHY_NOT: Record<string, string> = {
  other_item: "检查项目不同",
  not_performed: "检查未完成",
  cancelled: "检查已取消",
  after_order: "晚于本次申请",
  outside_window: "超出有效期",
  report_not_final: "报告未终审",
  qc_grade: "质控等级不足",
  hospital_level: "医院等级不符合互认规则",
  no_rules: "无适用的互认规则",
  no_standard_item: "无标准检查项目",
};

export const ITEM_STATUS: Record<string, string> = {
  accepted: "已互认",
  declined: "不予互认",
  candidates: "有可互认的既往检查",
  no_candidates: "无可互认的既往检查",
  skipped: "不适用互认",
  cancelled: "已取消",
};

export const CONN = {
  offline: "未连接",
  connecting: "连接中…",
  online: "已连接",
  retrying: (s: number) => `连接中断，${s} 秒后重连`,
  expired: "登录已过期，请从 HIS 重新打开",
};

export const T = {
  waiting: "等待医生在 HIS 中登录…",
  signedIn: (doctor: string, where: string) => `${doctor} 医生已登录${where ? `（${where}）` : ""}`,
  historyCount: (n: number) => `该患者在其他医院有 ${n} 项检查`,
  duplicateLead: (order: string) => `检查申请 ${order} 与以下既往检查重复，可互认检查结果，避免重复检查。`,
  declineWhat: (item: string, hospital: string, date: string) => `${item}：${hospital} ${date} 的检查`,
  needReason: "请选择不予互认的理由。",
  needText: "选择“其他”时请填写说明。",
  recognizable: "可互认",
  notRecognizable: "不可互认",
  images: "看影像",
  report: "看报告",
  accept: "接受互认",
  decline: "不予互认",
  accepted: "已接受",
  declined: "已不予互认",
  patient: (key: string) => `患者 ${key.slice(-6)}`,
  reminderLine: (n: number, at: string) => `${at} · 其他医院检查 ${n} 项`,
  qc: (grade: string | null) => `质控 ${grade ?? "未评"}`,
  national: "国家规定",
  local: "本地规定",
  choose: "请选择…",
};
