// The server's HTTP API, as the tablet uses it.
import type { Reference, Session } from "./store";

export class Refused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(path: string, init: RequestInit & { token?: string } = {}): Promise<T> {
  const headers = new Headers(init.headers);
  if (init.body) headers.set("content-type", "application/json");
  if (init.token) headers.set("authorization", `Bearer ${init.token}`);
  const res = await fetch(path, { ...init, headers });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new Refused(res.status, body.message ?? res.statusText);
  }
  return (await res.json()) as T;
}

interface Tokens {
  access_token: string;
  refresh_token: string;
}

/** Signs in and registers this tablet: a new session on a new device. */
export async function signIn(username: string, password: string): Promise<Session> {
  const tokens = await call<Tokens>("/api/v1/auth/login", {
    method: "POST",
    body: JSON.stringify({ username, password }),
  });
  const device = await call<{ device_id: string; actor: string }>("/api/v1/devices", {
    method: "POST",
    token: tokens.access_token,
    body: JSON.stringify({ name: `Browser tablet (${navigator.platform || "web"})` }),
  });
  return {
    user: username,
    access: tokens.access_token,
    refresh: tokens.refresh_token,
    device: device.device_id,
    actor: device.actor,
  };
}

/** New tokens for a session whose access token has expired. */
export async function refreshed(s: Session): Promise<Session> {
  const tokens = await call<Tokens>("/api/v1/auth/refresh", {
    method: "POST",
    body: JSON.stringify({ refresh_token: s.refresh }),
  });
  return { ...s, access: tokens.access_token, refresh: tokens.refresh_token };
}

/** The caller's reference data (their rights, units, audits ...). */
export function referenceOf(s: Session): Promise<Reference> {
  return call<Reference>("/api/v1/reference", { token: s.access });
}
