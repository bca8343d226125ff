// The API client every page uses: bearer token, JSON in and out, problem+json errors as ApiError.
// The token arrives once in the URL fragment (#token=..., never sent to a server or kept in history)
// and lives in sessionStorage for the tab.

const TOKEN_KEY = "wanying.token";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
  ) {
    super(`${status} ${title}: ${detail}`);
  }
}

export function takeTokenFromUrl(): void {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string): void {
  sessionStorage.setItem(TOKEN_KEY, value.trim());
}

async function send<T>(path: string, init: RequestInit): Promise<T> {
  const headers = new Headers(init.headers);
  const bearer = token();
  if (bearer) headers.set("Authorization", `Bearer ${bearer}`);
  headers.set("Accept", "application/json");
  const response = await fetch(path, { ...init, headers });
  const type = response.headers.get("content-type") ?? "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const problem = typeof body === "object" && body ? body : {};
    throw new ApiError(response.status, problem.title ?? response.statusText, problem.detail ?? String(body));
  }
  return body as T;
}

export function postJson<T>(path: string, payload: unknown): Promise<T> {
  return send<T>(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
}

export function postForm<T>(path: string, form: FormData): Promise<T> {
  return send<T>(path, { method: "POST", body: form });
}

export function getJson<T>(path: string): Promise<T> {
  return send<T>(path, { method: "GET" });
}

// A link to another of our pages that opens in a new tab: a new tab does not share this tab's sessionStorage,
// so the token travels in the fragment (never sent to a server; the page takes it out of the address at once).
export function pageLink(path: string): string {
  const bearer = token();
  return bearer ? `${path}#token=${encodeURIComponent(bearer)}` : path;
}
