// What the tablet keeps, in IndexedDB: the session and the reference data.
// Every write waits for strict durability, so what the screen calls saved
// is on the tablet's disk.
import { openDB, type DBSchema, type IDBPDatabase } from "idb";

export interface Session {
  user: string;
  access: string;
  refresh: string;
  device: string;
  actor: string;
}

export interface PlannedAudit {
  id: string;
  unit: string;
  number: string;
  scope: string[];
  planned_from: string;
  planned_to: string;
  template_version: number;
  /** The server holds its document (the lead began it on some tablet). */
  begun: boolean;
  team: { username: string; role: "lead" | "member" }[];
}

export interface TemplateItem {
  key: string;
  clause: string;
  question: string;
  response_type: string;
  evidence: boolean;
}

export interface Template {
  version: number;
  items: TemplateItem[];
}

export interface Reference {
  /** The caller's rights, as the wasm build's Device reads them. */
  author: {
    user: string;
    /** Roles by unit, with the days they are in force (ISO dates). */
    grants: { unit: string; role: string; from: string; until: string | null }[];
    audits: Record<string, "lead" | "member">;
    actors: string[];
    /** Each planned audit's checklist, resolved for its scope, by audit id. */
    planned?: Record<string, { checklist: { version: number; items: Record<string, unknown> } }>;
  };
  audits: PlannedAudit[];
  templates: Template[];
  /** Amendments, with the units (of a nodal officer's) that have yet to acknowledge each. */
  amendments?: Amendment[];
}

export interface Amendment {
  id: string;
  issued_on: string;
  authority: string;
  note: string;
  template_version: number;
  pending: string[];
}

/**
 * A document as the tablet keeps it: Automerge's saved bytes, for the user
 * who synced it (another user signing in on the same tablet neither sees
 * nor sends it).
 */
export interface KeptDoc {
  key: string;
  user: string;
  id: string;
  bytes: Uint8Array;
}

/**
 * What an audit's screen shows, computed by the wasm build shortly after the
 * document was kept (snapshot.ts): a cold start draws it while the wasm
 * compiles. A display only, never the data: every edit goes through the
 * device once it is ready.
 */
export interface Snapshot {
  /** `user/id`, like the document's. */
  key: string;
  /** The shape of this record: one of another version of the app is not drawn. */
  format: number;
  /** The audit view's JSON text. */
  view: string;
  /** May the user change the answers (as of the day it was kept)? */
  may: { ok: boolean; rule?: string; message?: string };
  /** The lead's moves offered. */
  moves: string[];
}

/** Changes the server refused, kept to be seen and exported (never dropped). */
export interface RefusedChange {
  key: string;
  user: string;
  doc: string;
  rule: string;
  message: string;
  /** The refused changes' hashes. */
  changes: string[];
  /** When the tablet heard of the refusal, ISO 8601. */
  at: string;
  /** When the user said they had seen it. */
  seen?: string;
}

/**
 * A photo or scan taken on this tablet: its bytes, kept until the server
 * holds them (and after, to be shown offline), with the reference the
 * documents carry.
 */
export interface KeptBlob {
  /** `user/sha256`. */
  key: string;
  sha256: string;
  user: string;
  bytes: Uint8Array;
  name: string;
  mime: string;
  /** The server holds every byte (from this user). */
  uploaded: boolean;
  /** Why the server refused it, if it did; kept and shown, never dropped. */
  refused?: string;
}

export interface Kept<T> {
  value: T;
  /** When the tablet received it, ISO 8601. */
  at: string;
}

interface Schema extends DBSchema {
  session: { key: string; value: Session };
  reference: { key: string; value: Kept<Reference> };
  docs: { key: string; value: KeptDoc };
  refused: { key: string; value: RefusedChange };
  blobs: { key: string; value: KeptBlob };
  screens: { key: string; value: Snapshot };
}

let db: Promise<IDBPDatabase<Schema>> | undefined;

function open(): Promise<IDBPDatabase<Schema>> {
  db ??= openDB<Schema>("sqm-field-audit", 5, {
    upgrade(d, from) {
      if (from < 1) {
        d.createObjectStore("session");
        d.createObjectStore("reference");
      }
      if (from < 2) d.createObjectStore("docs", { keyPath: "key" });
      if (from < 3) d.createObjectStore("refused", { keyPath: "key" });
      if (from < 4) d.createObjectStore("blobs", { keyPath: "key" });
      if (from < 5) d.createObjectStore("screens", { keyPath: "key" });
    },
  });
  return db;
}

async function put<S extends "session" | "reference">(store: S, value: Schema[S]["value"]) {
  const tx = (await open()).transaction(store, "readwrite", { durability: "strict" });
  await tx.store.put(value, "current");
  await tx.done;
}

/**
 * What a cold start reads first, in one transaction: the session, the
 * reference data if it is the signed-in user's, and the screen kept with
 * the audit `audit` (if named and kept).
 */
export async function opening(audit?: string): Promise<{
  session?: Session;
  reference?: Kept<Reference>;
  snapshot?: Snapshot;
}> {
  const tx = (await open()).transaction(["session", "reference", "screens"], "readonly");
  const [session, reference] = await Promise.all([tx.objectStore("session").get("current"), tx.objectStore("reference").get("current")]);
  if (!session || reference?.value.author.user !== session.user) return { session };
  const snapshot = audit === undefined ? undefined : await tx.objectStore("screens").get(`${session.user}/${audit}`);
  return { session, reference, snapshot };
}

export const session = {
  get: async () => (await open()).get("session", "current"),
  put: (s: Session) => put("session", s),
  clear: async () => {
    const tx = (await open()).transaction("session", "readwrite", { durability: "strict" });
    await tx.store.delete("current");
    await tx.done;
  },
};

export const reference = {
  get: async () => (await open()).get("reference", "current"),
  put: (r: Kept<Reference>) => put("reference", r),
};

export const docs = {
  /** The documents kept for `user`. */
  of: async (user: string): Promise<KeptDoc[]> =>
    (await open()).getAll("docs").then((all) => all.filter((d) => d.user === user)),
  /** Keeps documents in one transaction, on disk when it resolves. */
  put: async (kept: KeptDoc[]) => {
    const tx = (await open()).transaction("docs", "readwrite", { durability: "strict" });
    await Promise.all([...kept.map((d) => tx.store.put(d)), tx.done]);
  },
};

export const screens = {
  /** Keeps audits' screens (a display cache: the default durability will do). */
  put: async (kept: Snapshot[]) => {
    const tx = (await open()).transaction("screens", "readwrite");
    await Promise.all([...kept.map((k) => tx.store.put(k)), tx.done]);
  },
};

export const refused = {
  /** The refusals kept for `user`, newest first. */
  of: async (user: string) =>
    (await open())
      .getAll("refused")
      .then((all) => all.filter((r) => r.user === user).sort((a, b) => b.at.localeCompare(a.at))),
  put: async (items: RefusedChange[]) => {
    const tx = (await open()).transaction("refused", "readwrite", { durability: "strict" });
    await Promise.all([...items.map((r) => tx.store.put(r)), tx.done]);
  },
};

export const blobs = {
  /** The files kept for `user` that the server does not hold yet. */
  waiting: async (user: string) =>
    (await open())
      .getAll("blobs", IDBKeyRange.bound(`${user}/`, `${user}/\uffff`))
      .then((all) => all.filter((b) => !b.uploaded)),
  get: async (user: string, sha256: string) => (await open()).get("blobs", `${user}/${sha256}`),
  /** Keeps a file, on disk when it resolves. */
  put: async (b: KeptBlob) => {
    const tx = (await open()).transaction("blobs", "readwrite", { durability: "strict" });
    await Promise.all([tx.store.put(b), tx.done]);
  },
};
