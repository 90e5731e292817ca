// Photos and scans: a photo is downscaled on the tablet (longest side 1600
// px, JPEG), hashed, and kept in IndexedDB before any document refers to
// it; the server receives it later in parts, resuming where it stopped
// (server/src/http/blobs.rs), and the bar shows how far it has come.
import { t } from "./i18n";
import { signal } from "./signal";
import * as store from "./store";

/** A file as documents refer to it (sync-wasm's `EvidenceJson`). */
export interface Evidence {
  sha256: string;
  name: string;
  mime: string;
  size: number;
  taken_at?: string;
}

/** The longest side of a photo once downscaled. */
export const LONGEST_SIDE = 1600;
/** The largest file the server accepts (its `blob_bytes`). */
export const MOST_BYTES = 20 * 1024 * 1024;
/** One request's part: small enough that progress moves on a slow line. */
const PART_BYTES = 256 * 1024;
/** The longest file name kept: the rest is cut (the documents bound names). */
const MOST_NAME = 120;

/** A file the tablet will not keep, with the reason in the language shown. */
export class FileRefused extends Error {}

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A file name as documents may hold it: no control characters, not too long. */
function cleanName(name: string, ext?: string): string {
  let base = name.replace(/[\u0000-\u001f\u007f]/g, "").trim() || "file";
  if (ext) base = `${base.replace(/\.[^.]*$/, "")}.${ext}`;
  return [...base].slice(0, MOST_NAME).join("");
}

/** The photo redrawn so that its longest side is at most LONGEST_SIDE, as JPEG. */
async function downscale(file: File): Promise<Blob> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new FileRefused(t("file.unreadable"));
  }
  const scale = Math.min(1, LONGEST_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext("2d")!.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const jpeg = await new Promise<Blob | null>((done) => canvas.toBlob(done, "image/jpeg", 0.85));
  if (!jpeg) throw new FileRefused(t("file.unreadable"));
  return jpeg;
}

/**
 * Keeps a chosen file on the tablet's disk and returns its reference: a
 * photo downscaled; a PDF as it is when `pdf` allows it; anything else refused.
 */
export async function keepFile(user: string, file: File, pdf = false): Promise<Evidence> {
  let content: Blob;
  let name: string;
  let mime: string;
  if (file.type.startsWith("image/")) {
    content = await downscale(file);
    name = cleanName(file.name, "jpg");
    mime = "image/jpeg";
  } else if (pdf && file.type === "application/pdf") {
    content = file;
    name = cleanName(file.name);
    mime = file.type;
  } else {
    throw new FileRefused(t(pdf ? "file.photo_or_pdf" : "file.photo_only"));
  }
  if (content.size > MOST_BYTES) {
    throw new FileRefused(t("file.too_big", { mb: Math.round(MOST_BYTES / 1024 / 1024) }));
  }
  const bytes = new Uint8Array(await content.arrayBuffer());
  const sha256 = hex(await crypto.subtle.digest("SHA-256", bytes));
  const kept = await store.blobs.get(user, sha256);
  if (!kept) await store.blobs.put({ key: `${user}/${sha256}`, sha256, user, bytes, name, mime, uploaded: false });
  const taken = file.lastModified ? new Date(file.lastModified).toISOString() : undefined;
  return { sha256, name, mime, size: bytes.length, ...(taken ? { taken_at: taken } : {}) };
}

/** What the uploads need of the session: its token, and a new one when it expired. */
export interface Auth {
  token(): string;
  /** A new access token; throws when the session is over. */
  renew(): Promise<void>;
}

/** How far the files waiting for the server have come. */
export interface Sending {
  files: number;
  sent: number;
  total: number;
}

/** Sends the tablet's files to the server, one at a time, resuming each where the server stopped. */
export class Uploads {
  /** Undefined when nothing waits. */
  readonly sending = signal<Sending | undefined>(undefined);
  private running?: Promise<void>;
  private again = false;
  /** The files not yet on the server (nor refused), once scanned. */
  private pending?: Set<string>;

  /** `refused` hears of a file the server will not take; it stays on the tablet. */
  constructor(
    private readonly user: string,
    private readonly auth: Auth,
    private readonly refused: (b: store.KeptBlob, reason: string) => Promise<void>,
  ) {}

  /** Whether some file is not yet on the server. */
  waiting(): boolean {
    return this.sending.get() !== undefined;
  }

  /** Reads what waits, then sends it when `online`. Safe to call at any time. */
  kick(online: boolean): Promise<void> {
    if (this.running) {
      this.again ||= online;
      return this.running;
    }
    this.running = this.run(online).finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        void this.kick(true);
      }
    });
    return this.running;
  }

  /** A file just kept on the tablet: sent with the others. */
  added(sha256: string): void {
    this.pending?.add(sha256);
  }

  private async run(online: boolean) {
    // The tablet's files are scanned once; after that only those still waiting are read.
    this.pending ??= new Set(
      (await store.blobs.waiting(this.user)).filter((b) => !b.refused).map((b) => b.sha256),
    );
    const read = await Promise.all([...this.pending].map((sha) => store.blobs.get(this.user, sha)));
    const todo = read.filter((b): b is store.KeptBlob => b !== undefined && !b.uploaded && !b.refused);
    const total = todo.reduce((n, b) => n + b.bytes.length, 0);
    let sent = 0;
    this.sending.set(todo.length ? { files: todo.length, sent, total } : undefined);
    if (!online) return;
    for (const b of todo) {
      const done = await this.send(b, (n) => this.sending.set({ files: todo.length, sent: sent + n, total }));
      if (done === "stopped") return;
      this.pending.delete(b.sha256);
      sent += b.bytes.length;
    }
    this.sending.set(undefined);
  }

  /** A file's content: from the tablet, else from the server (when it lets this user read it). */
  async content(e: Evidence): Promise<Blob | undefined> {
    const kept = await store.blobs.get(this.user, e.sha256);
    if (kept) return new Blob([kept.bytes as Uint8Array<ArrayBuffer>], { type: kept.mime });
    if (!navigator.onLine) return undefined;
    try {
      const res = await this.call(`/api/v1/blobs/${e.sha256}`);
      return res.ok ? await res.blob() : undefined;
    } catch {
      return undefined;
    }
  }

  private async call(path: string, init: RequestInit = {}): Promise<Response> {
    const go = () => {
      const headers = new Headers(init.headers);
      headers.set("authorization", `Bearer ${this.auth.token()}`);
      return fetch(path, { ...init, headers });
    };
    const res = await go();
    if (res.status !== 401) return res;
    await this.auth.renew();
    return go();
  }

  /** One file, from where the server stopped; "stopped" when the line or the session went. */
  private async send(b: store.KeptBlob, progress: (sent: number) => void): Promise<"done" | "stopped"> {
    const url = `/api/v1/blobs/${b.sha256}`;
    const size = b.bytes.length;
    try {
      const status = await this.call(`${url}/status`);
      if (!status.ok) return "stopped";
      let from: number = (await status.json()).received ?? 0;
      let complete = from >= size;
      while (!complete) {
        progress(from);
        const end = Math.min(size, from + PART_BYTES) - 1;
        const res = await this.call(url, {
          method: "PUT",
          headers: { "content-type": "application/octet-stream", "content-range": `bytes ${from}-${end}/${size}` },
          body: b.bytes.slice(from, end + 1),
        });
        const body = await res.json().catch(() => ({}));
        if (res.status === 200 || res.status === 201) complete = true;
        else if (res.status === 202 || res.status === 409) from = Number(body.received) || 0;
        else if (res.status >= 500 && res.status !== 507) return "stopped";
        else {
          // Refused (over the quota, too big, not allowed): kept, shown, never dropped.
          const reason = String(body.message ?? res.statusText);
          await store.blobs.put({ ...b, refused: reason });
          await this.refused(b, reason);
          return "done";
        }
      }
      progress(size);
      await store.blobs.put({ ...b, uploaded: true });
      return "done";
    } catch {
      return "stopped";
    }
  }
}
