// The regulator's image-quality dashboard: grade distribution per hospital, body part and month, trend of the
// monthly mean score, the checks that fail most, the worst series with a drill-down to the marked image, and
// CSV/Excel export. Data: /api/v1/qc (views only).
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";
import { ApiError, getJson, takeTokenFromUrl, token } from "../common/api";
import { $, el } from "../common/dom";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement,
  Legend, Tooltip);
Chart.defaults.animation = false;
Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;

interface GradeRow { hospital: string; month: string; body_part: string; grade: string; series: number;
  total_sum: number }
interface CheckRow { hospital: string; month: string; body_part: string; check_id: string; label: string;
  dimension: string; failed: number; series: number }
interface Summary { grades: GradeRow[]; checks: CheckRow[]; hospitals: string[]; body_parts: Record<string, string>;
  dimensions: Record<string, string>; grade_order: string[] }
interface FailedCheck { id: string; label: string; dimension: string; value: number | null; threshold: number;
  fail_at: number; direction: "max" | "min"; score: number; where?: Record<string, unknown>; sop_uid?: string }
interface SeriesRow { series_uid: string; study_uid: string; hospital: string; study_date: string | null; month: string;
  protocol: string; protocol_version: string; coverage: number; positioning: number; artefact: number; clarity: number;
  total: number; grade: string; body_part_source: string | null; sop_uid: string | null; scored_at: string;
  failed_checks: FailedCheck[]; failed_data_checks: { id: string; label: string; detail: string }[] }

const GRADE_COLORS: Record<string, string> = { 甲: "#2e7d32", 乙: "#1565c0", 丙: "#ef6c00", 废片: "#c62828" };
const LINE_COLORS = ["#0b6e6e", "#6a1b9a", "#ef6c00", "#1565c0", "#c62828", "#2e7d32", "#5d4037", "#00838f"];
const charts: Record<string, Chart> = {};
let summary: Summary;

function filters(): URLSearchParams {
  const q = new URLSearchParams();
  const pairs: [string, string][] = [["hospital", "#f-hospital"], ["body_part", "#f-body-part"],
    ["month_from", "#f-from"], ["month_to", "#f-to"]];
  for (const [name, sel] of pairs) {
    const value = ($(sel) as HTMLInputElement).value;
    if (value) q.set(name, value);
  }
  return q;
}

function status(text: string): void {
  $("#status").textContent = text;
}

function partLabel(id: string): string {
  return summary?.body_parts[id] ?? id;
}

/** Grade counts stacked along one axis (hospital, body part or month). */
function gradeChart(id: string, axis: (r: GradeRow) => string, label: (key: string) => string = (k) => k): void {
  const keys = [...new Set(summary.grades.map(axis))].sort();
  const datasets = summary.grade_order.map((grade) => ({
    label: grade,
    backgroundColor: GRADE_COLORS[grade],
    data: keys.map((k) => summary.grades.filter((r) => axis(r) === k && r.grade === grade)
      .reduce((n, r) => n + r.series, 0)),
  }));
  draw(id, {
    type: "bar",
    data: { labels: keys.map(label), datasets },
    options: { maintainAspectRatio: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true,
      title: { display: true, text: "序列数" }, ticks: { precision: 0 } } } },
  }, datasets.reduce((n, d) => n + d.data.reduce((a, b) => a + b, 0), 0));
}

function trendChart(): void {
  const months = [...new Set(summary.grades.map((r) => r.month))].sort();
  const lines = ["全部", ...summary.hospitals.filter((h) => summary.grades.some((r) => r.hospital === h))];
  const datasets = lines.map((name, i) => ({
    label: name === "全部" ? "全部医院" : name,
    borderColor: LINE_COLORS[i % LINE_COLORS.length],
    backgroundColor: LINE_COLORS[i % LINE_COLORS.length],
    borderWidth: name === "全部" ? 3 : 1.5,
    spanGaps: true,
    data: months.map((m) => {
      const rows = summary.grades.filter((r) => r.month === m && (name === "全部" || r.hospital === name));
      const n = rows.reduce((a, r) => a + r.series, 0);
      return n ? Math.round((rows.reduce((a, r) => a + r.total_sum, 0) / n) * 10) / 10 : null;
    }),
  }));
  draw("chart-trend", {
    type: "line",
    data: { labels: months, datasets },
    options: { maintainAspectRatio: false, scales: { y: { suggestedMin: 50, suggestedMax: 100,
      title: { display: true, text: "平均总分" } } } },
  }, months.length);
}

function checksChart(): void {
  const byCheck = new Map<string, { label: string; failed: number; series: number }>();
  const seriesPerPart = new Map<string, number>();
  for (const r of summary.checks) {
    const key = `${r.body_part}|${r.check_id}`;
    const item = byCheck.get(key) ?? { label: `${partLabel(r.body_part)}：${r.label}`, failed: 0, series: 0 };
    item.failed += r.failed;
    byCheck.set(key, item);
  }
  for (const r of summary.grades) seriesPerPart.set(r.body_part, (seriesPerPart.get(r.body_part) ?? 0) + r.series);
  for (const [key, item] of byCheck) item.series = seriesPerPart.get(key.split("|")[0]) ?? item.failed;
  const worst = [...byCheck.values()].sort((a, b) => b.failed - a.failed || b.failed / b.series - a.failed / a.series)
    .slice(0, 10);
  draw("chart-checks", {
    type: "bar",
    data: {
      labels: worst.map((w) => (w.label.length > 34 ? `${w.label.slice(0, 33)}…` : w.label)),
      datasets: [{ label: "未通过序列数", backgroundColor: "#c62828", data: worst.map((w) => w.failed) },
        { label: "该部位评分序列数", backgroundColor: "#b0bec5", data: worst.map((w) => w.series) }],
    },
    options: { indexAxis: "y", maintainAspectRatio: false,
      scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
  }, worst.length);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function draw(id: string, config: any, points: number): void {
  charts[id]?.destroy();
  const canvas = $(`#${id}`) as HTMLCanvasElement;
  charts[id] = new Chart(canvas, config);
  canvas.dataset.points = String(points); // what the chart shows, for tests and screen readers
  canvas.setAttribute("aria-description", `${points} 项数据`);
}

function kpis(): void {
  const n = summary.grades.reduce((a, r) => a + r.series, 0);
  const sum = summary.grades.reduce((a, r) => a + r.total_sum, 0);
  const of = (g: string) => summary.grades.filter((r) => r.grade === g).reduce((a, r) => a + r.series, 0);
  const pct = (k: number) => (n ? `${((100 * k) / n).toFixed(1)}%` : "–");
  $("#kpi-series").textContent = String(n);
  $("#kpi-mean").textContent = n ? (sum / n).toFixed(1) : "–";
  $("#kpi-a").textContent = pct(of("甲"));
  $("#kpi-reject").textContent = pct(of("废片"));
}

function gradeBadge(grade: string): HTMLElement {
  return el("span", { class: `grade grade-${grade}` }, grade);
}

async function loadSeries(): Promise<void> {
  const q = filters();
  q.set("limit", "100");
  const { series } = await getJson<{ series: SeriesRow[] }>(`/api/v1/qc/series?${q}`);
  const body = $("#series-body");
  body.replaceChildren(...series.map((s) => {
    const open = el("button", { type: "button", "data-series": s.series_uid }, "查看");
    open.addEventListener("click", () => void showDetail(s.series_uid));
    const tds = [s.hospital, s.study_date ?? "", partLabel(s.protocol), s.total.toFixed(1)].map((t) => el("td", {}, t));
    return el("tr", { "data-series": s.series_uid }, ...tds, el("td", {}, gradeBadge(s.grade)),
      ...[s.coverage, s.positioning, s.artefact, s.clarity].map((v) => el("td", {}, v.toFixed(0))),
      el("td", {}, s.failed_checks.map((c) => c.label).join("；") || "无"), el("td", {}, open));
  }));
}

function describe(c: FailedCheck): string {
  const op = c.direction === "max" ? "≤" : "≥";
  const value = c.value === null ? "未测得" : Number(c.value.toPrecision(4)).toString();
  const where = c.where ? whereText(c.where) : "";
  return `测量值 ${value}，要求 ${op} ${c.threshold}（${c.fail_at} 时 0 分），得分 ${c.score.toFixed(0)}${where}`;
}

function whereText(w: Record<string, unknown>): string {
  const edges: Record<string, string> = { top: "上缘", bottom: "下缘", left: "左缘", right: "右缘" };
  const parts: string[] = [];
  if (typeof w.edge === "string") parts.push(`贴近${edges[w.edge] ?? w.edge}`);
  if (Array.isArray(w.bbox)) parts.push(`区域 [${w.bbox.join(", ")}]`);
  if (typeof w.slice === "number") parts.push(`第 ${w.slice + 1} 层`);
  if (typeof w.tags_say === "string") {
    parts.push(`标签为 ${partLabel(w.tags_say)}，图像识别为 ${partLabel(String(w.image_says))}`);
  }
  return parts.length ? `；位置：${parts.join("，")}` : "";
}

async function showDetail(seriesUid: string): Promise<void> {
  const dialog = $("#detail") as HTMLDialogElement;
  const detail = await getJson<{ latest: SeriesRow; history: SeriesRow[]; body_part_label: string }>(
    `/api/v1/qc/series/${seriesUid}`);
  const s = detail.latest;
  $("#detail-title").textContent = `${s.hospital} · ${detail.body_part_label} · ${s.study_date ?? ""}`;
  $("#detail-summary").replaceChildren(`总分 ${s.total.toFixed(1)} `, gradeBadge(s.grade),
    `（检查范围 ${s.coverage.toFixed(0)}，摄片体位 ${s.positioning.toFixed(0)}，伪影 ${s.artefact.toFixed(0)}，` +
    `清晰度 ${s.clarity.toFixed(0)}；方案 ${s.protocol} v${s.protocol_version}）`);
  $("#detail-checks").replaceChildren(...(s.failed_checks.length ? s.failed_checks.map((c) =>
    el("li", { "data-check": c.id }, el("strong", {}, c.label), el("br"), describe(c))) : [el("li", {}, "全部通过")]));
  $("#detail-data-checks").replaceChildren(...(s.failed_data_checks.length ? s.failed_data_checks.map((d) =>
    el("li", {}, `${d.label}：${d.detail}`)) : [el("li", {}, "全部通过")]));
  $("#detail-history").replaceChildren(...detail.history.map((h) =>
    el("li", {}, `v${h.protocol_version}：${h.total.toFixed(1)} 分 `, gradeBadge(h.grade),
      ` （${h.scored_at.slice(0, 19).replace("T", " ")}）`)));
  const marked = s.failed_checks.filter((c) => c.sop_uid === s.sop_uid && c.where &&
    ("bbox" in c.where || "edge" in c.where)).length;
  $("#detail-caption").textContent = marked ? `红框标出 ${marked} 处未通过项的位置（编号同左侧列表）` : "本图像无可标注位置的未通过项";
  const img = $("#detail-image") as HTMLImageElement;
  img.removeAttribute("src");
  if (!dialog.open) dialog.showModal();
  const response = await fetch(`/api/v1/qc/series/${seriesUid}/image`, { headers: auth() });
  if (response.ok) {
    img.src = URL.createObjectURL(await response.blob());
    await img.decode().catch(() => undefined);
    img.dataset.loaded = "1";
  } else {
    $("#detail-caption").textContent = "图像无法加载（原始影像未找到）";
  }
}

function auth(): HeadersInit {
  const bearer = token();
  return bearer ? { Authorization: `Bearer ${bearer}` } : {};
}

async function download(kind: "csv" | "xlsx"): Promise<void> {
  const response = await fetch(`/api/v1/qc/export.${kind}?${filters()}`, { headers: auth() });
  if (!response.ok) {
    status(`导出失败（${response.status}）`);
    return;
  }
  const link = el("a", { href: URL.createObjectURL(await response.blob()), download: `影像质控评分.${kind}` });
  document.body.append(link);
  link.click();
  link.remove();
  status(`已导出 ${kind === "csv" ? "CSV" : "Excel"} 文件`);
}

async function refresh(): Promise<void> {
  status("正在加载…");
  try {
    summary = await getJson<Summary>(`/api/v1/qc/summary?${filters()}`);
    const hospitalSelect = $("#f-hospital") as HTMLSelectElement;
    if (hospitalSelect.options.length === 1) {
      hospitalSelect.append(...summary.hospitals.map((h) => el("option", { value: h }, h)));
      ($("#f-body-part") as HTMLSelectElement).append(...Object.entries(summary.body_parts)
        .map(([id, label]) => el("option", { value: id }, label)));
    }
    kpis();
    gradeChart("chart-hospital", (r) => r.hospital);
    gradeChart("chart-body-part", (r) => r.body_part, partLabel);
    gradeChart("chart-month", (r) => r.month);
    trendChart();
    checksChart();
    await loadSeries();
    status(summary.grades.length ? "" : "暂无质控评分数据");
    document.body.dataset.ready = "1";
  } catch (e) {
    status(e instanceof ApiError ? (e.status === 401 || e.status === 403 ? "无权限：请使用监管或运维账号的链接打开本页。"
      : `加载失败：${e.detail}`) : "网络连接失败，请稍后重试。");
  }
}

takeTokenFromUrl();
$("#apply").addEventListener("click", () => void refresh());
$("#export-csv").addEventListener("click", () => void download("csv"));
$("#export-xlsx").addEventListener("click", () => void download("xlsx"));
$("#detail-close").addEventListener("click", () => ($("#detail") as HTMLDialogElement).close());
void refresh();
