// User-facing text (Simplified Chinese) shared by the pages, and the messages for API errors.
import { ApiError } from "./api";

export const LEVELS: Record<string, { label: string; hint: string }> = {
  normal_variant: { label: "常见/良性", hint: "多为常见的良性表现或正常变异" },
  follow_up: { label: "定期复查", hint: "一般按医生建议定期复查" },
  see_doctor: { label: "建议就诊", hint: "建议近期带报告到专科就诊" },
  urgent: { label: "尽快就医", hint: "需要尽快就医" },
};

export const EMERGENCY_PHONE = "120";

export const T = {
  loading: "正在处理，请稍候…",
  noToken: "未登录：请从医院短信或公众号中的链接打开本页。",
  networkError: "网络连接失败，请检查网络后重试。",
  tooLarge: "照片太大，请重新拍摄或裁剪后再上传。",
  unreadablePhoto: "照片无法识别，请在光线充足处把报告放平、拍满画面后重试。",
  sessionExpired: "登录已过期，请重新从链接打开本页。",
  forbidden: "您没有权限进行此操作。",
};

export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 401) return T.sessionExpired;
    if (error.status === 403) return T.forbidden;
    if (error.status === 413) return T.tooLarge;
    return `${error.title}：${error.detail}`;
  }
  return T.networkError;
}
