// Sync with the server: the wasm build of sync-core (a Device) speaks the
// protocol, this file carries its frames over the WebSocket, reconnects
// with backoff and jitter, and keeps every document the device changes in
// IndexedDB before the device may offer the change to the server.
import { Device } from "../generated/sync-wasm/sync_wasm.js";
import { refreshed } from "./api";
import { type Evidence, Uploads, keepFile } from "./files";
import { type Signal, signal } from "./signal";
import { snapshotOf } from "./snapshot";
import * as store from "./store";

export type Link = "offline" | "connecting" | "connected";

/** What the tablet holds, in the words every screen shows. */
export type SaveState =
  | "offline"
  | "syncing"
  | "saved_tablet"
  | "saved_server"
  | "refused"
  | "not_saved"
  | "sign_in_again";

/** Close codes of the server (server/src/sync/mod.rs, `close`). */
const UNAUTHORIZED = 4401;

const now = () => new Date().toISOString();

interface Notice {
  kind: string;
  doc?: string;
  rule?: string;
  message?: string;
  changes?: string[] | number;
}

export class Sync {
  readonly link = signal<Link>("offline");
  /** Bumped whenever a document changed on the tablet. */
  readonly changed = signal(0);
  /** What the tablet holds against what the server holds. */
  readonly saved = signal<SaveState>("offline");
  /** Changes the server refused, as kept on the tablet. */
  readonly refused = signal<store.RefusedChange[]>([]);
  private ws?: WebSocket;
  private attempt = 0;
  private timer?: ReturnType<typeof setTimeout>;
  private ticker?: ReturnType<typeof setInterval>;
  private stopped = false;
  private writing: Promise<void> = Promise.resolve();
  private writeFailed = false;
  /** An edit was made since the server last held everything. */
  private dirty = false;
  /** The server no longer takes this session's tokens. */
  private signedOut = false;

  /** Photos and scans on their way to the server. */
  readonly uploads: Uploads;
  /** The session with the tokens renewed last (the screens keep it). */
  readonly tokens: Signal<store.Session>;

  private constructor(
    readonly device: Device,
    private session: store.Session,
    /** The user's audits: their screens are kept with their documents. */
    private readonly audits: Set<string>,
  ) {
    this.tokens = signal(session);
    const auth = { token: () => this.session.access, renew: () => this.renew() };
    this.uploads = new Uploads(session.user, auth, (b, reason) => this.fileRefused(b, reason));
    this.uploads.sending.follow(() => this.judge());
  }

  /**
   * A device for the session's user with every document the tablet keeps
   * (`kept`, when they were read already).
   */
  static async start(session: store.Session, reference: store.Reference, kept?: store.KeptDoc[]): Promise<Sync> {
    performance.mark("sqm:sync-starting");
    const refused = store.refused.of(session.user);
    const device = new Device(session.actor, JSON.stringify(reference.author));
    for (const d of kept ?? (await store.docs.of(session.user))) {
      try {
        device.load(d.id, d.bytes);
      } catch (e) {
        // Kept as it is in IndexedDB, never dropped; the next sync brings the server's copy.
        console.warn(`document ${d.id} could not be loaded`, e);
      }
    }
    const sync = new Sync(device, session, new Set(Object.keys(reference.author.audits)));
    sync.refused.set(await refused);
    addEventListener("online", sync.online);
    addEventListener("offline", sync.offline);
    performance.mark("sqm:documents-loaded");
    // What waits to upload is counted in the background; the bar follows.
    void sync.uploads.kick(false);
    sync.judge();
    sync.connect();
    // Screens kept by an older version, or on another day, are brought up to date.
    sync.keepScreens([...sync.audits]);
    return sync;
  }

  private readonly online = () => this.connect();
  // The tablet says it has no network: the socket is gone too, whatever it still believes.
  private readonly offline = () => this.ws?.close();

  stop() {
    removeEventListener("online", this.online);
    removeEventListener("offline", this.offline);
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.ticker);
    clearTimeout(this.screensTimer);
    this.ws?.close();
  }

  /**
   * Makes an edit (JSON, as sync-wasm's `edit.rs` reads it) and resolves once
   * it is on the tablet's disk. Throws the rules' refusal, changing nothing.
   */
  async edit(id: string, edit: object): Promise<void> {
    this.device.edit(id, JSON.stringify(edit), now());
    this.dirty = true;
    this.changed.set(this.changed.get() + 1);
    await this.keep();
  }

  /**
   * Keeps a photo (or, with `pdf`, a PDF) on the tablet's disk and returns
   * the reference an edit attaches; the file goes to the server when it can.
   */
  async keepFile(file: File, pdf = false): Promise<Evidence> {
    const evidence = await keepFile(this.session.user, file, pdf);
    this.uploads.added(evidence.sha256);
    this.dirty = true;
    void this.uploads.kick(this.link.get() === "connected");
    return evidence;
  }

  /** Whether some work is not yet saved on the server as it is here. */
  unsent(): boolean {
    return this.device.has_unsaved() || this.device.unsynced().length > 0 || this.uploads.waiting();
  }

  /** The user has seen the refusals listed: the bar stops calling for them. */
  async seen(): Promise<void> {
    const at = now();
    const all = this.refused.get().map((r) => ({ ...r, seen: r.seen ?? at }));
    await store.refused.put(all);
    this.refused.set(all);
    this.judge();
  }

  private send(frames: Uint8Array[]) {
    for (const f of frames) this.ws?.send(f as Uint8Array<ArrayBuffer>);
  }

  private connect() {
    if (this.stopped || this.ws || !navigator.onLine) return;
    clearTimeout(this.timer);
    this.link.set("connecting");
    this.judge();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/api/v1/sync`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () =>
      ws.send(JSON.stringify({ access_token: this.session.access, device_id: this.session.device }));
    ws.onmessage = async (event) => {
      if (typeof event.data === "string") {
        if (event.data.includes('"ready":true')) {
          this.attempt = 0;
          this.link.set("connected");
          this.send(this.device.connect(now()));
          void this.uploads.kick(true);
          this.ticker = setInterval(() => {
            this.send(this.device.tick(now()));
            if (this.writeFailed) this.keep().catch(() => undefined);
            // A file whose sending stopped (the line dropped mid-part) resumes where the server stopped.
            if (this.uploads.waiting()) void this.uploads.kick(true);
            this.judge();
          }, 2000);
          this.judge();
        }
        return;
      }
      this.send(this.device.receive(new Uint8Array(event.data), now()));
      // A failed write is shown in the bar (not_saved) and tried again on the next frame.
      await this.keep().catch(() => undefined);
    };
    ws.onclose = async (event) => {
      clearInterval(this.ticker);
      this.ws = undefined;
      this.device.disconnect(now());
      this.link.set("offline");
      this.judge();
      if (event.code === UNAUTHORIZED) {
        // The access token expired: a new pair, then at once again.
        try {
          await this.renew();
          this.attempt = 0;
        } catch {
          // Signed out elsewhere: the tablet keeps working offline and says so.
          this.signedOut = true;
          this.judge();
          return;
        }
      }
      this.later();
    };
  }

  /** A GET of the server's API under this session, its token renewed once if it had expired. */
  async get(path: string): Promise<Response> {
    const go = () => fetch(path, { headers: { authorization: `Bearer ${this.session.access}` } });
    const res = await go();
    if (res.status !== 401) return res;
    await this.renew();
    return go();
  }

  /** A new pair of tokens for the session, kept on the tablet. */
  private async renew() {
    this.session = await refreshed(this.session);
    await store.session.put(this.session);
    this.tokens.set(this.session);
  }

  /** A file the server will not take: kept with the refusals, to be seen and exported. */
  private async fileRefused(b: store.KeptBlob, reason: string) {
    await store.refused.put([
      {
        key: `${this.session.user}/file/${b.sha256}`,
        user: this.session.user,
        doc: "",
        rule: "blob",
        message: `${b.name}: ${reason}`,
        changes: [b.sha256],
        at: now(),
      },
    ]);
    this.refused.set(await store.refused.of(this.session.user));
    this.judge();
  }

  /** Tries again after 1, 2, 4 ... 60 s, each with up to half as much again at random. */
  private later() {
    if (this.stopped) return;
    const base = Math.min(60_000, 1000 * 2 ** this.attempt++);
    this.timer = setTimeout(() => this.connect(), base + Math.random() * base * 0.5);
  }

  /**
   * Writes every document the device changed to IndexedDB, then tells the
   * device they are kept (only then does it offer the changes to the server).
   * One write at a time, in order; resolves when this call's changes are on disk.
   */
  private keep(): Promise<void> {
    // A failed write fails its own caller only; the next keep tries again.
    this.writing = this.writing.catch(() => undefined).then(() => this.keepNow());
    return this.writing;
  }

  private async keepNow(): Promise<void> {
    await this.takeNotices();
    const ids = this.device.take_unsaved();
    if (ids.length === 0) return this.judge();
    const user = this.session.user;
    const kept: store.KeptDoc[] = ids.map((id) => ({
      key: `${user}/${id}`,
      user,
      id,
      bytes: this.device.save(id),
    }));
    try {
      await store.docs.put(kept);
      this.writeFailed = false;
    } catch (e) {
      // Still in memory and listed again: the next keep writes it. The
      // edit that asked is told, so its screen never says "saved".
      this.device.store_failed(ids);
      this.writeFailed = true;
      this.judge();
      throw e;
    }
    this.send(this.device.stored(ids, now()));
    this.changed.set(this.changed.get() + 1);
    this.judge();
    this.keepScreens(ids);
  }

  /** Audits whose screens are to be kept, and the timer that keeps them. */
  private screensDue = new Set<string>();
  private screensTimer?: ReturnType<typeof setTimeout>;

  /** Keeps the screens of the audits among `ids` a second after the last keep (a run of taps costs one). */
  private keepScreens(ids: string[]) {
    for (const id of ids) if (this.audits.has(id)) this.screensDue.add(id);
    if (this.screensDue.size === 0) return;
    clearTimeout(this.screensTimer);
    this.screensTimer = setTimeout(() => {
      const due = [...this.screensDue];
      this.screensDue.clear();
      const kept = due.flatMap((id) => snapshotOf(this.device, this.session.user, id) ?? []);
      // A screen not kept only makes the next cold start wait for the wasm.
      store.screens.put(kept).catch((e) => console.warn("screens not kept", e));
    }, 1000);
  }

  /** Keeps the server's refusals on the tablet, to be seen and exported. */
  private async takeNotices() {
    const notices: Notice[] = JSON.parse(this.device.notices());
    const refused = notices
      .filter((n) => n.kind === "rejected" || n.kind === "quarantined")
      .map((n): store.RefusedChange => {
        const changes = Array.isArray(n.changes) ? n.changes : [];
        return {
          key: `${this.session.user}/${n.doc}/${changes[0] ?? now()}`,
          user: this.session.user,
          doc: n.doc ?? "",
          rule: n.rule ?? "",
          message: n.message ?? "",
          changes,
          at: now(),
        };
      });
    if (refused.length === 0) return;
    await store.refused.put(refused);
    this.refused.set(await store.refused.of(this.session.user));
  }

  /** The state every screen shows. */
  private judge() {
    const connected = this.link.get() === "connected";
    const unsynced = !connected || this.unsent();
    if (connected && !unsynced) this.dirty = false;
    let state: SaveState;
    if (this.writeFailed) state = "not_saved";
    else if (this.refused.get().some((r) => !r.seen)) state = "refused";
    else if (this.signedOut) state = "sign_in_again";
    else if (!connected) state = this.dirty ? "saved_tablet" : "offline";
    else state = unsynced ? "syncing" : "saved_server";
    if (state !== this.saved.get()) this.saved.set(state);
  }
}
