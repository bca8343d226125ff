// The push channel: trade the bearer token for a short-lived stream ticket, open an EventSource, and on any drop
// reconnect with exponential backoff and jitter (1 s doubling to 30 s), resuming after the last event id.
// The bearer token never goes into a URL. A refused ticket (401/403) stops retrying: no polling storm.
import { ApiError, postJson } from "../common/api";

export type Handler = (kind: string, data: Record<string, unknown>) => void;
export type ConnState = { state: "connecting" | "online" | "retrying" | "expired"; seconds?: number };

const KINDS = ["hello", "signed_in", "reminder", "duplicate", "order", "order_item", "resync"];
const MAX_DELAY_MS = 30_000;

export function openStream(onEvent: Handler, onState: (s: ConnState) => void): void {
  let lastId = "";
  let attempts = 0;

  const retry = () => {
    const base = Math.min(MAX_DELAY_MS, 1000 * 2 ** attempts);
    const delay = Math.round(base * (0.5 + Math.random() / 2));
    attempts += 1;
    onState({ state: "retrying", seconds: Math.ceil(delay / 1000) });
    setTimeout(connect, delay);
  };

  async function connect(): Promise<void> {
    onState({ state: "connecting" });
    let ticket: string;
    try {
      ticket = (await postJson<{ ticket: string }>("/api/v1/doctor/stream/ticket", {})).ticket;
    } catch (error) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        onState({ state: "expired" });
        return;
      }
      retry();
      return;
    }
    const query = new URLSearchParams({ ticket });
    if (lastId) query.set("last_event_id", lastId);
    const source = new EventSource(`/api/v1/doctor/stream?${query}`);
    for (const kind of KINDS) {
      source.addEventListener(kind, (message) => {
        const event = message as MessageEvent<string>;
        if (event.lastEventId) lastId = event.lastEventId;
        if (kind === "hello") {
          attempts = 0;
          onState({ state: "online" });
        }
        onEvent(kind, JSON.parse(event.data));
      });
    }
    // The browser would retry with the same (soon expired) ticket: close and come back with a fresh one.
    source.onerror = () => {
      source.close();
      retry();
    };
  }

  void connect();
}
