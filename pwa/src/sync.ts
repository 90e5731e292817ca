// Sync with the server: the wasm build of sync-core (a Device) speaks the
// protocol, this file carries its frames over the WebSocket, reconnects
// with backoff and jitter, and keeps every document the sync changes in
// IndexedDB.
import { Device } from "../generated/sync-wasm/sync_wasm.js";
import { refreshed } from "./api";
import { signal } from "./signal";
import * as store from "./store";

export type SyncState = "offline" | "connecting" | "connected";

/** Close codes of the server (server/src/sync/mod.rs, `close`). */
const UNAUTHORIZED = 4401;

const now = () => new Date().toISOString();

export class Sync {
  readonly state = signal<SyncState>("offline");
  /** Bumped whenever a document changed on the tablet. */
  readonly changed = signal(0);
  private ws?: WebSocket;
  private attempt = 0;
  private timer?: ReturnType<typeof setTimeout>;
  private ticker?: ReturnType<typeof setInterval>;
  private stopped = false;

  private constructor(
    readonly device: Device,
    private session: store.Session,
    private readonly onSession: (s: store.Session) => void,
  ) {}

  /** A device for the session's user with every document the tablet keeps. */
  static async start(
    session: store.Session,
    reference: store.Reference,
    onSession: (s: store.Session) => void,
  ): Promise<Sync> {
    const device = new Device(session.actor, JSON.stringify(reference.author));
    for (const d of await store.docs.of(session.user)) {
      try {
        device.load(d.id, d.bytes);
      } catch (e) {
        // Kept as it is in IndexedDB, never dropped; the next sync brings the server's copy.
        console.warn(`document ${d.id} could not be loaded`, e);
      }
    }
    const sync = new Sync(device, session, onSession);
    addEventListener("online", sync.online);
    addEventListener("offline", sync.offline);
    sync.connect();
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
    this.ws?.close();
  }

  private send(frames: Uint8Array[]) {
    for (const f of frames) this.ws?.send(f as Uint8Array<ArrayBuffer>);
  }

  private connect() {
    if (this.stopped || this.ws || !navigator.onLine) return;
    clearTimeout(this.timer);
    this.state.set("connecting");
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
          this.state.set("connected");
          this.send(this.device.connect(now()));
          this.ticker = setInterval(() => this.send(this.device.tick(now())), 5000);
        }
        return;
      }
      this.send(this.device.receive(new Uint8Array(event.data), now()));
      await this.keep();
    };
    ws.onclose = async (event) => {
      clearInterval(this.ticker);
      this.ws = undefined;
      this.device.disconnect(now());
      this.state.set("offline");
      if (event.code === UNAUTHORIZED) {
        // The access token expired: a new pair, then at once again.
        try {
          this.session = await refreshed(this.session);
          await store.session.put(this.session);
          this.onSession(this.session);
          this.attempt = 0;
        } catch {
          return; // Signed out elsewhere: the tablet keeps working offline.
        }
      }
      this.later();
    };
  }

  /** Tries again after 1, 2, 4 ... 60 s, each with up to half as much again at random. */
  private later() {
    if (this.stopped) return;
    const base = Math.min(60_000, 1000 * 2 ** this.attempt++);
    this.timer = setTimeout(() => this.connect(), base + Math.random() * base * 0.5);
  }

  private heads = new Map<string, string>();

  /** Keeps in IndexedDB every document whose heads moved since it was last kept. */
  private async keep() {
    const moved: store.KeptDoc[] = [];
    for (const id of this.device.documents()) {
      const heads = this.device.heads(id);
      // A document whose first changes are still on their way holds nothing to keep.
      if (heads.length === 0) continue;
      const key = heads.join(",");
      if (this.heads.get(id) === key) continue;
      this.heads.set(id, key);
      const user = this.session.user;
      moved.push({ key: `${user}/${id}`, user, id, bytes: this.device.save(id), heads });
    }
    if (moved.length === 0) return;
    await store.docs.put(moved);
    this.changed.set(this.changed.get() + 1);
  }
}
