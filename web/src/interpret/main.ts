// 报告智能解读: mark the report's terms, explain a tapped term, chat about the report, read a photographed report.
import { postForm, postJson, takeTokenFromUrl, token } from "../common/api";
import { $, el } from "../common/dom";
import { EMERGENCY_PHONE, errorMessage, LEVELS, T } from "../common/strings";
import { SAMPLE_REPORT } from "./sample";

interface Span {
  start: number;
  end: number;
  term: string;
  canonical: string;
  level: string;
  negated: boolean;
  uncertain: boolean;
  explanation: string;
  department: string;
  section: string;
}
interface MarkResult {
  spans: Span[];
  summary: string;
  disclaimer: string;
}
interface ChatResult {
  conversation_id: string;
  answer: string;
  source: "red_flag" | "model" | "fallback";
  red_flag: string | null;
  red_flag_label: string | null;
  emergency: boolean;
  disclaimer: string;
}

const API = "/api/v1/interpret";
const QUICK_QUESTIONS = ["这份报告严重吗？", "我该挂什么科？", "饮食和生活上要注意什么？"];
const SOURCE_LABEL: Record<string, string> = {
  model: "由医院智能助手回答",
  fallback: "由术语库自动回答",
  red_flag: "紧急提醒",
};
const DISCLAIMER = "以上内容仅帮助您理解报告，不能代替医生的诊断和治疗意见；如有不适或疑问，请及时就医。";

const reportText = $("#report-text") as HTMLTextAreaElement;
const interpretButton = $("#interpret-btn") as HTMLButtonElement;
const reportStatus = $("#report-status");
const chatInput = $("#chat-input") as HTMLInputElement;
const chatSend = $("#chat-send") as HTMLButtonElement;
const chatLog = $("#chat-log");

// One conversation per interpreted report text; a new text starts a new conversation.
let conversation: { id: string | null; report: string } = { id: null, report: "" };

function setStatus(message: string, error = false): void {
  reportStatus.textContent = message;
  reportStatus.classList.toggle("error", error);
}

function statusOf(span: Span): string {
  if (span.negated) return "报告写明未见或已排除，不用担心";
  if (span.uncertain) return "报告只是怀疑，尚未确定";
  return "报告中提到";
}

function renderLegend(): void {
  const legend = $(".legend");
  legend.replaceChildren(
    ...Object.entries(LEVELS).map(([level, { label }]) =>
      el("li", { style: `--swatch: var(--level-${level})` }, label),
    ),
    el("li", { style: "--swatch: #78909c" }, "划线 = 报告写明未见"),
    el("li", { style: "--swatch: transparent" }, "？ = 尚不确定"),
  );
}

function renderReport(text: string, spans: Span[]): void {
  const out = $("#marked-report");
  const parts: (Node | string)[] = [];
  let at = 0;
  for (const span of spans) {
    if (span.start < at) continue;
    parts.push(text.slice(at, span.start));
    const classes = ["term", `level-${span.level}`];
    if (span.negated) classes.push("negated");
    if (span.uncertain) classes.push("uncertain");
    const button = el(
      "button",
      {
        type: "button",
        class: classes.join(" "),
        "aria-label": `${span.term}（${LEVELS[span.level]?.label ?? span.level}，${statusOf(span)}），点击查看解释`,
        "aria-haspopup": "dialog",
      },
      text.slice(span.start, span.end),
    );
    button.addEventListener("click", () => showTerm(span));
    parts.push(button);
    at = span.end;
  }
  parts.push(text.slice(at));
  out.replaceChildren(...parts);
}

function showTerm(span: Span): void {
  const dialog = $("#term-dialog") as HTMLDialogElement;
  $("#term-title").textContent = span.canonical === span.term ? span.term : `${span.term}（${span.canonical}）`;
  const status = $("#term-status");
  status.textContent = statusOf(span);
  status.classList.toggle("negated", span.negated);
  $("#term-explanation").textContent = span.explanation;
  $("#term-department").textContent = span.department || "—";
  const level = LEVELS[span.level];
  $("#term-level").textContent = span.negated ? "报告未见，无需处理" : `${level?.label ?? span.level}：${level?.hint ?? ""}`;
  dialog.showModal();
}

async function interpret(): Promise<void> {
  const text = reportText.value.trim();
  if (!text) {
    setStatus("请先粘贴报告文字，或拍照识别。", true);
    return;
  }
  interpretButton.disabled = true;
  setStatus(T.loading);
  try {
    const result = await postJson<MarkResult>(`${API}/mark`, { text });
    renderReport(text, result.spans);
    $("#disclaimer").textContent = result.disclaimer;
    $("#summary").textContent = result.summary;
    $("#marked-card").hidden = false;
    $("#chat-card").hidden = false;
    if (conversation.report !== text) {
      conversation = { id: null, report: text };
      chatLog.replaceChildren();
    }
    setStatus(result.spans.length ? `识别到 ${result.spans.length} 个医学术语。` : "没有识别到需要解释的医学术语。");
    interpretButton.textContent = "重新解读";
  } catch (error) {
    setStatus(errorMessage(error), true);
  } finally {
    interpretButton.disabled = false;
  }
}

function addMessage(role: "patient" | "assistant", text: string, source = ""): HTMLElement {
  const item = el("li", { class: `msg ${role} ${source}` }, text);
  if (source && SOURCE_LABEL[source]) item.append(el("span", { class: "source" }, SOURCE_LABEL[source]));
  chatLog.append(item);
  item.scrollIntoView({ block: "nearest" });
  return item;
}

function showUrgent(label: string | null): void {
  const banner = $("#urgent");
  const close = el("button", { type: "button", class: "secondary" }, "我已知晓");
  close.addEventListener("click", () => (banner.hidden = true));
  banner.replaceChildren(
    el("strong", {}, `危险信号${label ? `：${label}` : ""}`),
    `请立即拨打 ${EMERGENCY_PHONE} 或前往最近医院的急诊科，不要等待。`,
    el("br"),
    el("a", { href: `tel:${EMERGENCY_PHONE}` }, `拨打 ${EMERGENCY_PHONE}`),
    close,
  );
  banner.hidden = false;
  banner.scrollIntoView({ block: "start" });
}

async function ask(message: string): Promise<void> {
  message = message.trim();
  if (!message) return;
  addMessage("patient", message);
  chatInput.value = "";
  chatSend.disabled = true;
  const pending = addMessage("assistant", "正在思考…", "pending");
  try {
    const payload = conversation.id
      ? { conversation_id: conversation.id, message }
      : { report_text: conversation.report, message };
    let result: ChatResult;
    try {
      result = await postJson<ChatResult>(`${API}/chat`, payload);
    } catch (error) {
      // The server forgot the conversation (restart): start a new one about the same report.
      if (!conversation.id || (error as { status?: number }).status !== 404) throw error;
      result = await postJson<ChatResult>(`${API}/chat`, { report_text: conversation.report, message });
    }
    conversation.id = result.conversation_id;
    $("#disclaimer").textContent = result.disclaimer;
    pending.remove();
    addMessage("assistant", result.answer, result.source);
    if (result.emergency) showUrgent(result.red_flag_label);
  } catch (error) {
    pending.remove();
    addMessage("assistant", errorMessage(error), "error");
  } finally {
    chatSend.disabled = false;
  }
}

async function readPhoto(file: File): Promise<void> {
  setStatus("正在识别照片中的文字…");
  interpretButton.disabled = true;
  try {
    const form = new FormData();
    form.append("file", file, file.name || "report.jpg");
    const result = await postForm<{ text: string }>(`${API}/ocr`, form);
    reportText.value = result.text;
    $("#ocr-hint").hidden = false;
    // The marks and the chat were about the previous text: hidden until the new one is interpreted.
    $("#marked-card").hidden = true;
    $("#chat-card").hidden = true;
    interpretButton.textContent = "重新解读";
    setStatus("识别完成，请核对文字。");
    reportText.focus();
  } catch (error) {
    setStatus(errorMessage(error), true);
  } finally {
    interpretButton.disabled = false;
  }
}

function init(): void {
  takeTokenFromUrl();
  $("#disclaimer").textContent = DISCLAIMER;
  renderLegend();
  $("#quick-questions").replaceChildren(
    ...QUICK_QUESTIONS.map((q) => {
      const chip = el("button", { type: "button" }, q);
      chip.addEventListener("click", () => void ask(q));
      return chip;
    }),
  );
  interpretButton.addEventListener("click", () => void interpret());
  $("#sample-btn").addEventListener("click", () => {
    reportText.value = SAMPLE_REPORT;
    void interpret();
  });
  const photo = $("#photo-input") as HTMLInputElement;
  photo.addEventListener("change", () => {
    const file = photo.files?.[0];
    if (file) void readPhoto(file);
    photo.value = "";
  });
  $("#chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    void ask(chatInput.value);
  });
  if (!token()) setStatus(T.noToken, true);
}

init();
