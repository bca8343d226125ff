// One signed report, opened from the HIS plugin (reminder or duplicate popup): the hospital, the exam, the current
// text with its status (amended, critical) and a link to the images. The text is decrypted by the API for doctors.
import { getJson, pageLink, takeTokenFromUrl, token } from "../common/api";
import { $ } from "../common/dom";
import { errorMessage } from "../common/strings";

type Report = {
  hospital: string; hospital_name: string; report_id: string; study_uid: string | null; status: string;
  critical: boolean; author_id: string; signed_at: string; amendments: number; amended_reason: string | null;
  item_name: string | null; modality: string | null; study_date: string | null; findings: string; impression: string;
};

const STATUS: Record<string, string> = { final: "终审报告", amended: "修订后报告" };

function show(report: Report): void {
  document.title = `${report.hospital_name} 检查报告 · 皖影`;
  $("#report-hospital").textContent = report.hospital_name;
  $("#report-item").textContent = report.item_name ?? "";
  $("#report-modality").textContent = report.modality ?? "";
  $("#report-date").textContent = report.study_date ?? "";
  const status = $("#report-status");
  status.textContent = STATUS[report.status] ?? report.status;
  status.classList.toggle("amended", report.status === "amended");
  $("#report-critical").hidden = !report.critical;
  const amended = $("#report-amended");
  amended.hidden = report.amendments === 0;
  amended.textContent = `已修订 ${report.amendments} 次` + (report.amended_reason ? `，原因：${report.amended_reason}` : "");
  $("#report-findings").textContent = report.findings;
  $("#report-impression").textContent = report.impression;
  $("#report-author").textContent = report.author_id;
  const signed = $("#report-signed");
  signed.setAttribute("datetime", report.signed_at);
  signed.textContent = new Date(report.signed_at).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai" });
  const images = $("#report-images") as HTMLAnchorElement;
  if (report.study_uid) images.href = pageLink(`/app/viewer.html?study=${encodeURIComponent(report.study_uid)}`);
  else images.hidden = true;
  $("#report").hidden = false;
  $("#status").textContent = "";
}

async function main(): Promise<void> {
  takeTokenFromUrl();
  const params = new URLSearchParams(location.search);
  const hospital = params.get("hospital");
  const id = params.get("report");
  const status = $("#status");
  if (!token()) {
    status.textContent = "未登录：请从 HIS 的检查互认助手中打开报告。";
    return;
  }
  if (!hospital || !id) {
    status.textContent = "链接不完整：缺少医院或报告编号。";
    return;
  }
  try {
    show(await getJson<Report>(`/api/v1/reports/${encodeURIComponent(hospital)}/${encodeURIComponent(id)}`));
  } catch (error) {
    status.textContent = errorMessage(error);
    status.classList.add("error");
  }
}

void main();
