// A patient's studies from our QIDO-RS (newest first), each with its series as thumbnails (WADO-RS thumbnail);
// a thumbnail opens the viewer on that series, the study's button on the whole study. ?patient=<PatientID>.
import { takeTokenFromUrl, token } from "../common/api";
import { $, el } from "../common/dom";
import { T, errorMessage } from "../common/strings";
import { DicomWebClient, value, type DicomJson } from "../viewer/dicomweb";

takeTokenFromUrl();
const params = new URLSearchParams(location.search);
const client = new DicomWebClient(params.get("dicomweb") ?? "/dicomweb");
const status = $("#status");
const list = $("#studies");
const input = $("#patient") as HTMLInputElement;

const STUDY_FIELDS = ["00081030", "00080061", "00201206", "00201208", "00080050"].join(",");

function say(text: string, error = false): void {
  status.textContent = text;
  status.classList.toggle("error", error);
}

function formatDate(dicomDate: string): string {
  return /^\d{8}$/.test(dicomDate) ? `${dicomDate.slice(0, 4)}-${dicomDate.slice(4, 6)}-${dicomDate.slice(6)}` : "日期不详";
}

function viewerUrl(study: string, series?: string): string {
  const query = new URLSearchParams({ study, ...(series ? { series } : {}) });
  const dicomweb = params.get("dicomweb");
  if (dicomweb) query.set("dicomweb", dicomweb);
  return `viewer.html?${query}`;
}

async function thumbnail(image: HTMLImageElement, study: string, series: string): Promise<void> {
  const response = await fetch(`${client.base}/studies/${study}/series/${series}/thumbnail?viewport=128,128`,
    { headers: client.headers("image/jpeg") });
  if (!response.ok) throw new Error(`thumbnail: HTTP ${response.status}`);
  image.src = URL.createObjectURL(await response.blob());
}

function seriesLink(study: string, item: DicomJson): HTMLAnchorElement {
  const uid = value<string>(item, "0020000E")!;
  const label = `${value<string>(item, "00080060") ?? ""} ${value<string>(item, "0008103E") ?? `序列 ${value(item, "00200011") ?? ""}`}`.trim();
  const count = value(item, "00201209");
  const image = el("img", { alt: label, width: "124", height: "124", loading: "lazy" });
  thumbnail(image, study, uid).catch(() => image.classList.add("missing"));
  return el("a", { class: "series-link", href: viewerUrl(study, uid), "data-series": uid }, image,
    el("span", {}, count === undefined ? label : `${label} · ${count} 张`));
}

async function studyCard(item: DicomJson): Promise<HTMLLIElement> {
  const uid = value<string>(item, "0020000D")!;
  const modalities = (item["00080061"]?.Value ?? []).join("/");
  const images = value(item, "00201208");
  const card = el("li", { class: "card study", "data-study": uid },
    el("h2", {}, el("span", { class: "date" }, formatDate(value<string>(item, "00080020") ?? "")),
      el("span", {}, value<string>(item, "00081030") ?? "检查")),
    el("p", { class: "facts" }, [modalities, images !== undefined ? `${images} 张影像` : "",
      value<string>(item, "00080050") ? `检查号 ${value<string>(item, "00080050")}` : ""].filter(Boolean).join(" · ")));
  const row = el("div", { class: "series-row", role: "list", "aria-label": "序列" });
  card.append(row, el("a", { class: "button secondary open", href: viewerUrl(uid) }, "打开全部影像"));
  const series = (await client.json(`/studies/${uid}/series`))
    .sort((a, b) => Number(value(a, "00200011") ?? 0) - Number(value(b, "00200011") ?? 0));
  for (const s of series) row.append(seriesLink(uid, s));
  return card;
}

async function show(patient: string): Promise<void> {
  list.replaceChildren();
  if (!patient) {
    say("请输入患者 ID");
    return;
  }
  say(T.loading);
  try {
    const found = await client.json(
      `/studies?PatientID=${encodeURIComponent(patient)}&includefield=${STUDY_FIELDS}`);
    found.sort((a, b) => String(value(b, "00080020") ?? "").localeCompare(String(value(a, "00080020") ?? "")));
    list.append(...await Promise.all(found.map(studyCard)));
    say(found.length ? `共 ${found.length} 次检查` : "没有找到该患者的检查");
  } catch (error) {
    say(errorMessage(error), true);
  }
  document.body.dataset.ready = "1";
}

$("#search").addEventListener("submit", (event) => {
  event.preventDefault();
  const patient = input.value.trim();
  const url = new URL(location.href);
  url.searchParams.set("patient", patient);
  history.replaceState(null, "", url);
  delete document.body.dataset.ready;
  void show(patient);
});

if (!token()) say(T.noToken, true);
else {
  input.value = params.get("patient") ?? "";
  void show(input.value);
}
