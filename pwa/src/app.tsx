// The screens: sign in, then the auditor's audits, with the language switch
// and the network state on every screen.
import { useEffect, useState } from "preact/hooks";
import { Refused, referenceOf, refreshed, signIn } from "./api";
import { AuditScreen, readAudit } from "./audit";
import { Dashboard, isAdmin, isNodal } from "./dashboard";
import { Adherence, NcAgeing, Quarantine } from "./reports";
import { type Key, lang, setLang, showDate, t } from "./i18n";
import type { Signal } from "./signal";
import * as store from "./store";
import { NcCards, NcScreen } from "./nc";
import { Refusals } from "./refused";
import { Search } from "./search";
import { type SaveState, Sync } from "./sync";
import { type Outcome, OutcomeLine, failed, refusal } from "./ui";

function useSignal<T>(s: Signal<T>): T {
  const [value, set] = useState(s.get());
  useEffect(() => s.follow(set), [s]);
  return value;
}

/** The screen the address names: `#/audit/<id>`, or the list. */
function useHash(): string {
  const [hash, set] = useState(location.hash);
  useEffect(() => {
    const changed = () => set(location.hash);
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return hash;
}

function useOnline(): boolean {
  const [online, set] = useState(navigator.onLine);
  useEffect(() => {
    const on = () => set(true);
    const off = () => set(false);
    addEventListener("online", on);
    addEventListener("offline", off);
    return () => {
      removeEventListener("online", on);
      removeEventListener("offline", off);
    };
  }, []);
  return online;
}

const STATE_WORDS: Record<SaveState, [Key, string]> = {
  offline: ["state.offline", "○"],
  saved_tablet: ["state.saved_tablet", "○"],
  syncing: ["state.syncing", "↻"],
  saved_server: ["state.saved_server", "✓"],
  refused: ["state.refused", "⚠"],
  not_saved: ["state.not_saved", "⚠"],
  sign_in_again: ["state.sign_in_again", "⚠"],
};

function Header(props: { session?: store.Session; sync?: Sync; onSignOut: () => void }) {
  const online = useOnline();
  const l = useSignal(lang);
  const [state, setState] = useState<SaveState | undefined>(props.sync?.saved.get());
  useEffect(() => {
    setState(props.sync?.saved.get());
    return props.sync?.saved.follow(setState);
  }, [props.sync]);
  const [sending, setSending] = useState(props.sync?.uploads.sending.get());
  useEffect(() => {
    setSending(props.sync?.uploads.sending.get());
    return props.sync?.uploads.sending.follow(setSending);
  }, [props.sync]);
  // No network is offline, whatever the socket still believes.
  const shown: SaveState = !online && state !== "saved_tablet" && state !== "refused" ? "offline" : (state ?? "offline");
  const [words, icon] = STATE_WORDS[shown];
  const good = shown === "saved_server";
  const bad = shown === "refused" || shown === "not_saved" || shown === "sign_in_again";
  return (
    <header class="bar">
      <h1>{t("app.title")}</h1>
      <span class={good ? "state online" : bad ? "state bad" : "state offline"} role="status" data-state={shown}>
        <span aria-hidden="true">{icon}</span>{" "}
        {shown === "refused" ? (
          <a href="#/refused">{t(words)}</a>
        ) : shown === "syncing" && sending && sending.total > 0 ? (
          t("state.sending", { percent: Math.floor((100 * sending.sent) / sending.total) })
        ) : (
          t(words)
        )}
      </span>
      <button
        type="button"
        class="lang"
        lang={l === "en" ? "hi" : "en"}
        aria-label={t("lang.switch_label")}
        onClick={() => setLang(l === "en" ? "hi" : "en")}
      >
        {t("lang.switch")}
      </button>
      {props.session && (
        <button type="button" onClick={props.onSignOut}>
          {t("signout")}
        </button>
      )}
    </header>
  );
}

function SignIn(props: { onSignedIn: (s: store.Session) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Outcome>();
  async function submit(e: Event) {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    if (!navigator.onLine) {
      setError(failed(t("signin.offline")));
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      const s = await signIn(String(form.get("username")), String(form.get("password")));
      await store.session.put(s);
      props.onSignedIn(s);
    } catch (err) {
      setError(failed(err instanceof Refused && err.status === 401 ? t("signin.failed") : t("signin.error")));
    } finally {
      setBusy(false);
    }
  }
  return (
    <main class="panel">
      <h2>{t("signin.heading")}</h2>
      <form onSubmit={submit}>
        <label>
          {t("signin.username")}
          <input name="username" autocomplete="username" autocapitalize="none" required />
        </label>
        <label>
          {t("signin.password")}
          <input name="password" type="password" autocomplete="current-password" required />
        </label>
        <OutcomeLine outcome={error} />
        <button type="submit" disabled={busy}>
          {busy ? t("signin.busy") : t("signin.submit")}
        </button>
      </form>
    </main>
  );
}

/**
 * The reference data kept on the tablet (read at boot, or here), brought up
 * to date when online.
 */
function useReference(
  session: store.Session,
  setSession: (s: store.Session) => void,
  booted?: store.Kept<store.Reference>,
) {
  const [kept, setKept] = useState(mineOnly(session, booted));
  useEffect(() => {
    let live = true;
    (async () => {
      const stored = mineOnly(session, kept ?? (await store.reference.get()));
      if (live && stored) setKept(stored);
      if (!navigator.onLine) return;
      let s = session;
      let value: store.Reference;
      try {
        value = await referenceOf(s);
      } catch (err) {
        if (!(err instanceof Refused && err.status === 401)) return;
        // The access token expired: the refresh token gives a new pair.
        s = await refreshed(s);
        await store.session.put(s);
        setSession(s);
        value = await referenceOf(s);
      }
      const fresh = { value, at: new Date().toISOString() };
      await store.reference.put(fresh);
      if (live) setKept(fresh);
    })().catch(() => {
      // Offline or the server away: the tablet goes on with what it keeps.
    });
    return () => {
      live = false;
    };
  }, [session.user]);
  return kept;
}

/** The reference data kept on the tablet if it is the signed-in user's (another user's rights are never theirs). */
function mineOnly(session: store.Session, kept?: store.Kept<store.Reference>) {
  return kept?.value.author.user === session.user ? kept : undefined;
}

/**
 * The lead makes the audit's document on their tablet from the programme's
 * plan; sync takes it to the team and the server.
 */
function Begin(props: { sync: Sync; audit: store.PlannedAudit }) {
  const [error, setError] = useState<Outcome>();
  const a = props.audit;
  async function begin() {
    try {
      await props.sync.edit(a.id, {
        edit: "create_audit",
        unit: a.unit,
        number: a.number,
        scope: a.scope,
        template_version: a.template_version,
        lead: a.team.find((m) => m.role === "lead")?.username ?? props.sync.device.user(),
        team: a.team.filter((m) => m.role !== "lead").map((m) => m.username),
        start: a.planned_from,
        end: a.planned_to,
      });
      location.hash = `#/audit/${a.id}`;
    } catch (e) {
      setError(failed(refusal(e)));
    }
  }
  return (
    <>
      <button type="button" onClick={begin}>
        {t("audits.begin")}
      </button>
      <OutcomeLine outcome={error} />
    </>
  );
}

function MyAudits(props: {
  session: store.Session;
  setSession: (s: store.Session) => void;
  /** The reference data read at boot, if any. */
  booted?: store.Kept<store.Reference>;
  /** The audit's screen kept on the tablet, drawn until the device is ready. */
  snapshot?: store.Snapshot & { id: string };
  live?: Promise<Live>;
  sync?: Sync;
  /** The device the page opened with is still on its way. */
  waiting: boolean;
  onSync: (s: Sync) => void;
}) {
  useSignal(lang);
  const kept = useReference(props.session, props.setSession, props.booted);
  const sync = props.sync;
  const [, setChanged] = useState(0);
  const hasReference = kept !== undefined;
  // One sync per signed-in user, started once the tablet has their rights (at boot if it had them then).
  useEffect(() => {
    if (!kept || sync || props.waiting) return;
    let live = true;
    Sync.start(props.session, kept.value).then((s) => (live ? props.onSync(s) : s.stop()));
    return () => {
      live = false;
    };
  }, [hasReference, props.session.user, sync === undefined, props.waiting]);
  useEffect(() => sync?.changed.follow(setChanged), [sync]);
  const hash = useHash();
  if (!kept) return <main class="panel" aria-busy="true" />;
  const open = /^#\/audit\/([0-9a-f-]+)(?:\/finding\/(.+))?$/.exec(hash);
  if (open) {
    const finding = open[2] === undefined ? undefined : decodeURIComponent(open[2]);
    const early = props.snapshot?.id === open[1] ? props.snapshot : undefined;
    return (
      <AuditScreen
        id={open[1]}
        finding={finding}
        reference={kept.value}
        sync={sync}
        snapshot={early}
        live={early && props.live?.then((l) => l.sync)}
      />
    );
  }
  if (hash === "#/refused" && sync) return <Refusals sync={sync} />;
  if (hash === "#/reports/nc-ageing" && sync) return <NcAgeing sync={sync} reference={kept.value} />;
  if (hash === "#/reports/quarantine" && sync) return <Quarantine sync={sync} reference={kept.value} />;
  if (hash === "#/reports/adherence" && sync) return <Adherence sync={sync} reference={kept.value} />;
  const nc = /^#\/nc\/([0-9a-f-]+)$/.exec(hash);
  if (nc) return <NcScreen id={nc[1]} sync={sync} />;
  const mine = kept.value.audits.filter((a) => kept.value.author.audits[a.id]);
  const nodal = isNodal(kept.value);
  return (
    <main class="panel">
      {sync && <Search sync={sync} />}
      {sync && nodal && <Dashboard sync={sync} reference={kept.value} />}
      {isAdmin(kept.value) && (
        <section id="admin">
          <h2>{t("admin.heading")}</h2>
          <p>{t("admin.where")}</p>
          <p class="report-links">
            <a href="#/reports/nc-ageing">{t("report.link")}</a>
            <a href="#/reports/adherence">{t("report.adherence.link")}</a>
            <a href="#/reports/quarantine">{t("report.quarantine.link")}</a>
          </p>
        </section>
      )}
      <h2>{t("audits.heading")}</h2>
      <p class="muted">{t("audits.as_of", { date: showDate(kept.at) })}</p>
      {mine.length === 0 && <p>{t("audits.none")}</p>}
      <ul class="cards">
        {mine.map((a) => {
          const state = readAudit(sync, a.id)?.state;
          const lead = kept.value.author.audits[a.id] === "lead";
          return (
            <li class="card" key={a.id} data-audit={a.id}>
              <h3>
                <a href={`#/audit/${a.id}`} aria-label={t("audit.open", { number: a.number })}>
                  {a.number}
                </a>
              </h3>
              <p class="audit-state">{state ? t(`audit.state.${state}` as Key) : t("audit.not_here")}</p>
              {sync && lead && !a.begun && !state && <Begin sync={sync} audit={a} />}
              <p>{t(lead ? "audits.lead" : "audits.member")}</p>
              <p>{t("audits.dates", { from: showDate(a.planned_from), to: showDate(a.planned_to) })}</p>
              <p>{t("audits.scope", { scope: a.scope.join(", ") })}</p>
              <p class="muted">{t("audits.template", { version: a.template_version })}</p>
            </li>
          );
        })}
      </ul>
      {sync && <NcCards sync={sync} />}
    </main>
  );
}

/** The device, once the wasm build is ready (with its version, for the footer). */
export interface Live {
  core: string;
  sync?: Sync;
}

/**
 * What the tablet held when the page opened, read before the first screen so
 * that the screen the address names opens at once: with the device ready,
 * or with the audit's kept snapshot and the device still on its way (`live`).
 */
export interface Boot extends Partial<Live> {
  session?: store.Session;
  reference?: store.Kept<store.Reference>;
  snapshot?: store.Snapshot & { id: string };
  live?: Promise<Live>;
}

export function App(props: { boot: Boot }) {
  // What the page opened with, until the user signs out.
  const [boot, setBoot] = useState(props.boot);
  const [session, setSession] = useState<store.Session | null>(boot.session ?? null);
  const [sync, setSync] = useState<Sync | undefined>(boot.sync);
  const [core, setCore] = useState(boot.core);
  // Until the device the page opened with is ready, no other is started.
  const [waiting, setWaiting] = useState(boot.core === undefined);
  useSignal(lang);
  useEffect(() => {
    let current = true;
    boot.live?.then(
      (l) => {
        setCore(l.core);
        if (current) setSync(l.sync);
        else l.sync?.stop();
        setWaiting(false);
      },
      () => setWaiting(false),
    );
    return () => {
      current = false;
    };
  }, [boot]);
  // The sync in use is stopped when it is replaced or the user signs out.
  useEffect(() => () => sync?.stop(), [sync]);
  useEffect(() => sync?.tokens.follow(setSession), [sync]);
  async function signOut() {
    // Work not yet on the server stays on the tablet for this user, but say so first.
    if (sync?.unsent()) {
      if (!confirm(t("signout.pending"))) return;
    }
    await store.session.clear();
    // In one render: no sync is started again for the user signing out.
    setBoot({});
    setWaiting(false);
    setSync(undefined);
    setSession(null);
  }
  return (
    <>
      <Header session={session ?? undefined} sync={sync} onSignOut={signOut} />
      {session === null && <SignIn onSignedIn={setSession} />}
      {session && (
        <MyAudits
          session={session}
          setSession={setSession}
          booted={boot.reference}
          snapshot={sync ? undefined : boot.snapshot}
          live={boot.live}
          sync={sync}
          waiting={waiting}
          onSync={setSync}
        />
      )}
      {core && <footer class="muted">{t("footer.core", { version: core })}</footer>}
    </>
  );
}
