// The HIS plugin: a narrow side panel next to the hospital's HIS. It wakes when the doctor signs in, pops up the
// patient's exams at other hospitals when the HIS opens a patient, pops up duplicate candidates when an exam is
// ordered, records accept / decline (with a reason) and shows 已互认 on accepted items.
import { getJson, pageLink, postJson, takeTokenFromUrl, token } from "../common/api";
import { $, el } from "../common/dom";
import { errorMessage } from "../common/strings";
import { openStream } from "./stream";
import { CONN, ITEM_STATUS, REPORT_STATUS, T, WHY_NOT } from "./text";

type Exam = {
  study_uid: string; hospital: string; hospital_name: string | null; study_date: string | null;
  modality: string | null; item_name: string | null; report_status: string | null; report_id: string | null;
  qc_grade: string | null; recognizable?: boolean; why_not?: string | null; decision?: string | null;
};
type Reminder = { reminder_id: string; person_key: string; raised_at: string; exam_count: number; exams: Exam[] };
type Item = { standard_item: string; local_item_name: string | null; status: string; label: string | null;
  candidates: Exam[] };
type Order = { order_id: string; items: Item[] };
type Reason = { code: string; name: string; list: string; needs_text: boolean };

const orders = new Map<string, Order>();
const pendingOrders = new Map<string, boolean>(); // order id -> pop up when loaded
let orderTimer: number | undefined;
let reasons: Reason[] = [];
let duplicateOrder: string | null = null;
let declining: { order: string; item: string; study: string } | null = null;

const status = (text: string, error = false) => {
  $("#status").textContent = text;
  $("#status").classList.toggle("error", error);
};
const dialog = (id: string) => $(id) as HTMLDialogElement;
const show = (d: HTMLDialogElement) => {
  for (const other of document.querySelectorAll<HTMLDialogElement>("dialog.popup[open]")) {
    if (other !== d && other.id !== "decline-dialog") other.close();
  }
  if (!d.open) d.showModal();
};
const localTime = (iso: string) =>
  new Date(iso).toLocaleString("zh-CN", { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });

function links(exam: Exam): HTMLElement {
  const study = encodeURIComponent(exam.study_uid);
  const box = el("span", { class: "links" });
  if (exam.report_id) {
    const report = `hospital=${encodeURIComponent(exam.hospital)}&report=${encodeURIComponent(exam.report_id)}`;
    box.append(el("a", { href: pageLink(`/app/report.html?${report}`), target: "_blank", rel: "noopener",
      class: "report-link" }, T.report));
  }
  box.append(el("a", { href: pageLink(`/app/viewer.html?study=${study}`), target: "_blank", rel: "noopener",
    class: "images-link" }, T.images));
  return box;
}

function examFacts(exam: Exam): HTMLElement {
  return el("div", { class: "facts" },
    el("strong", { class: "hospital" }, exam.hospital_name ?? exam.hospital),
    el("span", { class: "date" }, exam.study_date ?? ""),
    el("span", { class: "item" }, `${exam.item_name ?? ""}`),
    el("span", { class: "modality" }, exam.modality ?? ""),
    el("span", { class: "report" }, REPORT_STATUS[exam.report_status ?? "none"] ?? exam.report_status ?? ""),
    el("span", { class: "qc" }, T.qc(exam.qc_grade)));
}

// ------------------------------------------------------------------ reminders

async function loadReminders(): Promise<Reminder[]> {
  const body = await getJson<{ reminders: Reminder[] }>("/api/v1/doctor/reminders?limit=20");
  const list = $("#recent");
  list.replaceChildren(...body.reminders.map((r) => {
    const open = el("button", { type: "button", class: "link row-button" },
      `${T.patient(r.person_key)} · ${T.reminderLine(r.exam_count, localTime(r.raised_at))}`);
    open.addEventListener("click", () => showHistory(r));
    return el("li", { "data-reminder": r.reminder_id }, open);
  }));
  $("#recent-empty").hidden = body.reminders.length > 0;
  return body.reminders;
}

function showHistory(reminder: Reminder): void {
  $("#history-count").textContent = T.historyCount(reminder.exam_count);
  $("#history-list").replaceChildren(...reminder.exams.map((exam) => {
    const verdict = exam.recognizable
      ? el("span", { class: "tag ok" }, T.recognizable)
      : el("span", { class: "tag no", title: reasonsOf(exam.why_not) }, `${T.notRecognizable}：${reasonsOf(exam.why_not)}`);
    return el("li", { class: "exam", "data-study": exam.study_uid }, examFacts(exam), verdict, links(exam));
  }));
  show(dialog("#history-dialog"));
}

const reasonsOf = (why: string | null | undefined) =>
  (why ?? "").split(",").filter(Boolean).map((c) => WHY_NOT[c] ?? c).join("、");

async function onReminder(id: string): Promise<void> {
  const found = (await loadReminders()).find((r) => r.reminder_id === id);
  if (found) showHistory(found);
}

// ------------------------------------------------------------------ orders and duplicates

function scheduleOrder(orderId: string, popup: boolean): void {
  pendingOrders.set(orderId, popup || pendingOrders.get(orderId) === true);
  // Candidates of one order arrive as several events in a burst: read the order once after the burst.
  window.clearTimeout(orderTimer);
  orderTimer = window.setTimeout(() => void flushOrders(), 120);
}

async function flushOrders(): Promise<void> {
  const batch = [...pendingOrders];
  pendingOrders.clear();
  for (const [orderId, popup] of batch) {
    try {
      const order = await getJson<Order>(`/api/v1/doctor/orders/${encodeURIComponent(orderId)}/items`);
      orders.set(orderId, order);
      const open = duplicateOrder === orderId && dialog("#duplicate-dialog").open;
      if ((popup || open) && order.items.some((i) => i.candidates.length)) showDuplicates(order);
    } catch (error) {
      status(errorMessage(error), true);
    }
  }
  renderOrders();
}

function renderOrders(): void {
  const rows = [...orders.values()].flatMap((order) => order.items.map((item) => {
    const label = item.status === "accepted"
      ? el("span", { class: "tag hr", title: "HR" }, item.label ?? "已互认")
      : el("span", { class: `tag status-${item.status}` }, ITEM_STATUS[item.status] ?? item.status);
    const row = el("li", { "data-order": order.order_id, "data-item": item.standard_item },
      el("span", { class: "order-name" }, `${order.order_id} · ${item.local_item_name ?? item.standard_item}`), label);
    if (item.candidates.length && item.status !== "accepted") {
      const open = el("button", { type: "button", class: "link" }, "查看");
      open.addEventListener("click", () => showDuplicates(order));
      row.append(open);
    }
    return row;
  }));
  $("#orders").replaceChildren(...rows);
  $("#orders-empty").hidden = rows.length > 0;
}

function showDuplicates(order: Order): void {
  duplicateOrder = order.order_id;
  $("#duplicate-lead").textContent = T.duplicateLead(order.order_id);
  $("#duplicate-items").replaceChildren(...order.items.filter((i) => i.candidates.length).map((item) => {
    const head = el("h3", {}, item.local_item_name ?? item.standard_item);
    if (item.status === "accepted") head.append(" ", el("span", { class: "tag hr" }, item.label ?? "已互认"));
    const list = el("ul", { class: "exams" }, ...item.candidates.map((c) => {
      const row = el("li", { class: "exam candidate", "data-study": c.study_uid }, examFacts(c), links(c));
      if (c.decision) {
        row.append(el("span", { class: `tag ${c.decision === "accepted" ? "ok" : "no"}` },
          c.decision === "accepted" ? T.accepted : T.declined));
      } else if (item.status !== "accepted") {
        const accept = el("button", { type: "button", class: "primary small" }, T.accept);
        const decline = el("button", { type: "button", class: "secondary small" }, T.decline);
        accept.addEventListener("click", () => void decide(order.order_id, item.standard_item, c.study_uid,
          "accepted"));
        decline.addEventListener("click", () => openDecline(order.order_id, item, c));
        row.append(el("span", { class: "decide" }, accept, decline));
      }
      return row;
    }));
    return el("section", { class: "dup-item", "data-item": item.standard_item }, head, list);
  }));
  show(dialog("#duplicate-dialog"));
}

async function decide(order: string, item: string, study: string, decision: string, reason?: string,
  text?: string): Promise<void> {
  try {
    await postJson(`/api/v1/doctor/orders/${encodeURIComponent(order)}/items/${encodeURIComponent(item)}/decision`,
      { candidate_study_uid: study, decision, reason_code: reason ?? null, reason_text: text || null });
    status("");
  } catch (error) {
    status(errorMessage(error), true);
  }
  // The stream's order_item event reloads the order too; this covers a stream that is reconnecting.
  scheduleOrder(order, false);
}

// ------------------------------------------------------------------ decline dialog

function fillReasons(): void {
  const select = $("#decline-reason") as HTMLSelectElement;
  const groups = [["national", T.national], ["local", T.local]].map(([list, name]) =>
    el("optgroup", { label: name }, ...reasons.filter((r) => r.list === list).map((r) =>
      el("option", { value: r.code }, r.name))));
  select.replaceChildren(el("option", { value: "" }, T.choose), ...groups);
}

function openDecline(order: string, item: Item, c: Exam): void {
  declining = { order, item: item.standard_item, study: c.study_uid };
  $("#decline-what").textContent = T.declineWhat(item.local_item_name ?? item.standard_item,
    c.hospital_name ?? c.hospital, c.study_date ?? "");
  ($("#decline-reason") as HTMLSelectElement).value = "";
  ($("#decline-text") as HTMLTextAreaElement).value = "";
  $("#decline-text-wrap").hidden = true;
  $("#decline-error").textContent = "";
  dialog("#decline-dialog").showModal();
}

function wireDecline(): void {
  const select = $("#decline-reason") as HTMLSelectElement;
  const text = $("#decline-text") as HTMLTextAreaElement;
  select.addEventListener("change", () => {
    $("#decline-text-wrap").hidden = !reasons.find((r) => r.code === select.value)?.needs_text;
  });
  $("#decline-cancel").addEventListener("click", () => dialog("#decline-dialog").close());
  $("#decline-confirm").addEventListener("click", () => {
    const reason = reasons.find((r) => r.code === select.value);
    if (!reason) return void ($("#decline-error").textContent = T.needReason);
    if (reason.needs_text && !text.value.trim()) return void ($("#decline-error").textContent = T.needText);
    const target = declining;
    dialog("#decline-dialog").close();
    if (target) void decide(target.order, target.item, target.study, "declined", reason.code, text.value.trim());
  });
}

// ------------------------------------------------------------------ wiring

function setConn(text: string, state: string): void {
  $("#conn").textContent = text;
  $("#conn").dataset.state = state;
}

function wake(data: Record<string, unknown>): void {
  const where = [data.department, data.workstation].filter(Boolean).join(" ");
  $("#doctor").classList.replace("asleep", "awake");
  $("#doctor-status").textContent = T.signedIn(String(data.doctor_id), where);
  void loadReminders().catch((e) => status(errorMessage(e), true));
}

async function refresh(): Promise<void> {
  await loadReminders();
  for (const id of orders.keys()) scheduleOrder(id, false);
}

function start(): void {
  takeTokenFromUrl();
  $("#history-close").addEventListener("click", () => dialog("#history-dialog").close());
  $("#duplicate-close").addEventListener("click", () => dialog("#duplicate-dialog").close());
  wireDecline();
  if (!token()) {
    setConn(CONN.expired, "expired");
    return;
  }
  void getJson<{ reasons: Reason[] }>("/api/v1/doctor/reasons").then((r) => {
    reasons = r.reasons;
    fillReasons();
  }).catch((e) => status(errorMessage(e), true));
  openStream((kind, data) => {
    if (kind === "hello" || kind === "resync") void refresh().catch((e) => status(errorMessage(e), true));
    else if (kind === "signed_in") wake(data);
    else if (kind === "reminder") void onReminder(String(data.event_id)).catch((e) => status(errorMessage(e), true));
    else if (kind === "duplicate") scheduleOrder(String(data.order_id), true);
    else if (kind === "order" || kind === "order_item") scheduleOrder(String(data.order_id), false);
  }, (s) => {
    if (s.state === "online") setConn(CONN.online, "online");
    else if (s.state === "connecting") setConn(CONN.connecting, "connecting");
    else if (s.state === "retrying") setConn(CONN.retrying(s.seconds ?? 1), "retrying");
    else setConn(CONN.expired, "expired");
  });
}

start();
