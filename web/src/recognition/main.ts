// The regulator's mutual-recognition figures: per ordering hospital, standard item and month, how many ordered
// items had an earlier exam that could be recognised, how many doctors accepted (a repeat exam avoided) or
// declined and why, and the recognition rate. Data: GET /api/v1/doctor/statistics (views only).
import {
  BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController, LineElement, PointElement,
  Tooltip,
} from "chart.js";
import { ApiError, getJson, takeTokenFromUrl, token } from "../common/api";
import { $, el } from "../common/dom";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement,
  Legend, Tooltip);
Chart.defaults.animation = false;

interface Row { hospital: string; standard_item: string; month: string; duplicates_found: number; candidates: number;
  decided: number; accepted: number; declined: number; recognition_rate: number | null }
interface Refusal { hospital: string; standard_item: string; month: string; reason_code: string; count: number }
interface Stats { rows: Row[]; refusals: Refusal[];
  names: { hospitals: Record<string, string>; items: Record<string, string>; reasons: Record<string, string> } }

const charts: Record<string, Chart> = {};
let stats: Stats;

const sum = (rows: Row[], k: keyof Row) => rows.reduce((n, r) => n + (r[k] as number), 0);
const rate = (accepted: number, decided: number) => (decided ? `${((100 * accepted) / decided).toFixed(1)}%` : "–");
const hospitalName = (code: string) => stats.names.hospitals[code] ?? code;
const itemName = (code: string) => stats.names.items[code] ?? code;

function selected(): { rows: Row[]; refusals: Refusal[] } {
  const hospital = ($("#f-hospital") as HTMLSelectElement).value;
  const item = ($("#f-item") as HTMLSelectElement).value;
  const keep = (r: { hospital: string; standard_item: string }) =>
    (!hospital || r.hospital === hospital) && (!item || r.standard_item === item);
  return { rows: stats.rows.filter(keep), refusals: stats.refusals.filter(keep) };
}

function draw(id: string, config: any, points: number): void {
  charts[id]?.destroy();
  const canvas = $(`#${id}`) as HTMLCanvasElement;
  charts[id] = new Chart(canvas, config);
  canvas.dataset.points = String(points); // what the chart shows, for tests and screen readers
}

function render(): void {
  const { rows, refusals } = selected();
  $("#kpi-found").textContent = String(sum(rows, "duplicates_found"));
  $("#kpi-accepted").textContent = String(sum(rows, "accepted"));
  $("#kpi-declined").textContent = String(sum(rows, "declined"));
  $("#kpi-rate").textContent = rate(sum(rows, "accepted"), sum(rows, "decided"));

  const hospitals = [...new Set(rows.map((r) => r.hospital))].sort();
  const per = (k: keyof Row) => hospitals.map((h) => sum(rows.filter((r) => r.hospital === h), k));
  draw("chart-hospital", {
    type: "bar",
    data: { labels: hospitals.map(hospitalName), datasets: [
      { label: "发现", data: per("duplicates_found"), backgroundColor: "#90a4ae" },
      { label: "已互认", data: per("accepted"), backgroundColor: "#2e7d32" },
      { label: "不予互认", data: per("declined"), backgroundColor: "#c62828" }] },
    options: { maintainAspectRatio: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  }, hospitals.length);

  const months = [...new Set(rows.map((r) => r.month))].sort();
  const monthly = months.map((m) => {
    const of = rows.filter((r) => r.month === m);
    const decided = sum(of, "decided");
    return decided ? Math.round((1000 * sum(of, "accepted")) / decided) / 10 : null;
  });
  draw("chart-month", {
    type: "line",
    data: { labels: months, datasets: [{ label: "互认率 (%)", data: monthly, borderColor: "#0b6e6e", spanGaps: true }] },
    options: { maintainAspectRatio: false, scales: { y: { min: 0, max: 100 } } },
  }, months.length);

  const reasons = new Map<string, number>();
  for (const r of refusals) reasons.set(r.reason_code, (reasons.get(r.reason_code) ?? 0) + r.count);
  const ranked = [...reasons.entries()].sort((a, b) => b[1] - a[1]);
  draw("chart-reasons", {
    type: "bar",
    data: { labels: ranked.map(([c]) => stats.names.reasons[c] ?? c),
      datasets: [{ label: "项目数", data: ranked.map(([, n]) => n), backgroundColor: "#ef6c00" }] },
    options: { indexAxis: "y", maintainAspectRatio: false, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
  }, ranked.length);

  $("#rows").replaceChildren(...rows.map((r) => el("tr", { "data-row": `${r.hospital}|${r.standard_item}|${r.month}` },
    el("td", {}, hospitalName(r.hospital)), el("td", {}, itemName(r.standard_item)), el("td", {}, r.month),
    el("td", {}, String(r.duplicates_found)), el("td", {}, String(r.candidates)), el("td", {}, String(r.decided)),
    el("td", {}, String(r.accepted)), el("td", {}, String(r.declined)), el("td", {}, rate(r.accepted, r.decided)))));
  $("#status").textContent = rows.length ? "" : "暂无互认数据。";
}

function exportCsv(): void {
  const head = ["医院", "医院编码", "检查项目", "项目编码", "月份", "发现", "候选检查", "已处理", "已互认", "不予互认", "互认率"];
  const quote = (v: string | number) => `"${String(v).replaceAll('"', '""')}"`;
  const lines = selected().rows.map((r) => [hospitalName(r.hospital), r.hospital, itemName(r.standard_item),
    r.standard_item, r.month, r.duplicates_found, r.candidates, r.decided, r.accepted, r.declined,
    rate(r.accepted, r.decided)].map(quote).join(","));
  const blob = new Blob(["\ufeff" + [head.map(quote).join(","), ...lines].join("\r\n")], { type: "text/csv" });
  const link = el("a", { href: URL.createObjectURL(blob), download: "互认统计.csv" });
  link.click();
  URL.revokeObjectURL(link.href);
}

async function main(): Promise<void> {
  takeTokenFromUrl();
  if (!token()) {
    $("#status").textContent = "未登录：请用监管账号的链接打开本页。";
    return;
  }
  try {
    stats = await getJson<Stats>("/api/v1/doctor/statistics");
  } catch (error) {
    $("#status").textContent = error instanceof ApiError ? `${error.title}：${error.detail}` : "网络连接失败。";
    return;
  }
  const options = (sel: string, names: Record<string, string>) =>
    ($(sel) as HTMLSelectElement).append(...Object.entries(names).map(([code, name]) => el("option", { value: code }, name)));
  options("#f-hospital", stats.names.hospitals);
  options("#f-item", stats.names.items);
  for (const sel of ["#f-hospital", "#f-item"]) $(sel).addEventListener("change", render);
  $("#export-csv").addEventListener("click", exportCsv);
  render();
  document.body.dataset.ready = "1";
}

void main();
