// Non-conformities on the tablet: the list of the NCs the user deals with
// (overdue first, with days overdue and escalation level) and one NC with
// its finding, the process owner's correction, root cause and actions, and
// the moves the rules let this user make now (raise, submit the response,
// accept or reject the plan, ...). Every "may I?" asks the wasm build.
import { useState } from "preact/hooks";
import { AddFile, Files } from "./evidence";
import type { Evidence } from "./files";
import { type Key, dateProblem, parseDate, showDate, t, today } from "./i18n";
import type { Sync } from "./sync";
import { DateField, type Outcome, OutcomeLine, failed, formDate, itemId, refusal, saved, savingForm } from "./ui";

export interface NcAction {
  text: string;
  owner: string;
  target: string;
  done_on: string | null;
}

export interface NcView {
  kind: "nc";
  id: string;
  unit: string;
  audit: string;
  finding: string;
  process: string | null;
  clause: string;
  class: string;
  raised_on: string;
  number: string | null;
  provisional: string;
  description: string;
  correction: string;
  root_cause: string;
  actions: Record<string, NcAction>;
  extensions: { of: string; due: string; justification: string; by: string; at: string; request: string | null }[];
  extension_requests: ExtensionRequest[];
  verification: { note: string; by: string; on: string } | null;
  implementation_evidence: (Evidence & { by: string; at: string })[];
  verification_evidence: (Evidence & { by: string; at: string })[];
  state: string;
  due: string | null;
  days_overdue: number | null;
  escalation: string | null;
  events: { move: string; from: string; by: string; at: string; note: string }[];
}

/** The NC moves, in the order they come, and whether each needs a reason. */
const MOVES: [string, boolean][] = [
  ["raise", false],
  ["submit_response", false],
  ["accept_plan", false],
  ["reject_plan", true],
  ["mark_implemented", false],
  ["verify_effective", false],
  ["verify_not_effective", true],
  ["reopen", true],
  ["withdraw", true],
];

/** Whether the rules let this user write `field` of the NC now. */
const mayWrite = (sync: Sync, id: string, field: string) =>
  JSON.parse(sync.device.may_edit(id, JSON.stringify({ field }), today())).ok === true;

/** The NC a document holds, or nothing if it holds another kind. */
export function readNc(sync: Sync, id: string): NcView | undefined {
  try {
    const v = JSON.parse(sync.device.nc_view(id, today()));
    return v.kind === "nc" ? v : undefined;
  } catch {
    // Not an NC, or its first changes are still on their way.
    return undefined;
  }
}

/** Every NC the tablet holds: open ones first, the most overdue first, then by due date. */
export function heldNcs(sync: Sync): NcView[] {
  const done = (n: NcView) => n.state === "closed" || n.state === "withdrawn";
  return sync.device
    .documents()
    .map((id) => readNc(sync, id))
    .filter((n): n is NcView => n !== undefined)
    .sort(
      (a, b) =>
        Number(done(a)) - Number(done(b)) ||
        (b.days_overdue ?? -1) - (a.days_overdue ?? -1) ||
        (a.due ?? "9999").localeCompare(b.due ?? "9999"),
    );
}

export const ncName = (n: NcView) => n.number ?? n.provisional;

/** Due date, days overdue and escalation level, in words. */
function Due(props: { nc: NcView }) {
  const { nc } = props;
  if (!nc.due) return null;
  return (
    <p class={nc.days_overdue ? "overdue" : undefined}>
      {t("nc.due", { date: showDate(nc.due) })}
      {nc.days_overdue ? ` · ${t("nc.overdue", { days: nc.days_overdue })}` : ""}
      {nc.escalation ? ` · ${t("nc.level", { level: nc.escalation })}` : ""}
    </p>
  );
}

export function NcCards(props: { sync: Sync }) {
  const ncs = heldNcs(props.sync);
  if (ncs.length === 0) return null;
  return (
    <section aria-labelledby="ncs-heading">
      <h2 id="ncs-heading">{t("nc.heading")}</h2>
      <ul class="cards">
        {ncs.map((nc) => (
          <li class="card" key={nc.id} data-nc={nc.id}>
            <h3>
              <a href={`#/nc/${nc.id}`}>{ncName(nc)}</a>
            </h3>
            <p class="audit-state">{t(`nc.state.${nc.state}` as Key)}</p>
            <p>
              {t(`finding.class.${nc.class}` as Key)} · {t("audit.clause", { clause: nc.clause })}
              {nc.process && ` · ${t("audit.process", { process: nc.process })}`}
            </p>
            <Due nc={nc} />
          </li>
        ))}
      </ul>
    </section>
  );
}

/** A text the process owner writes, saved on its own. */
function OwnerText(props: { label: string; value: string; editable: boolean; save: (text: string) => Promise<void> }) {
  const [text, setText] = useState<string>();
  const [outcome, setOutcome] = useState<Outcome>();
  if (!props.editable) {
    return (
      <div>
        <h3>{props.label}</h3>
        <p class="note">{props.value || t("nc.not_given")}</p>
      </div>
    );
  }
  return (
    <div class="field">
      <label>
        {props.label}
        <textarea rows={3} value={text ?? props.value} onInput={(e) => setText(e.currentTarget.value)} />
      </label>
      <button
        type="button"
        disabled={text === undefined}
        onClick={async () => {
          try {
            await props.save(text ?? props.value);
            setText(undefined);
            setOutcome(saved);
          } catch (e) {
            setOutcome(failed(refusal(e)));
          }
        }}
      >
        {t("nc.save", { what: props.label })}
      </button>
      <OutcomeLine outcome={outcome} small />
    </div>
  );
}

/** A new action: what, who does it, by when. */
function NewAction(props: { save: (edit: object) => Promise<void> }) {
  const [outcome, setOutcome] = useState<Outcome>();
  const submit = savingForm(
    (data) =>
      props.save({
        edit: "put_action",
        id: itemId("a"),
        text: String(data.get("text")),
        owner: String(data.get("owner")),
        target: formDate(data, "target"),
      }),
    setOutcome,
  );
  return (
    <form class="wide" onSubmit={submit}>
      <fieldset>
        <legend>{t("nc.action_new")}</legend>
        <label>
          {t("nc.action_text")}
          <textarea name="text" rows={2} required />
        </label>
        <label>
          {t("nc.action_owner")}
          <input name="owner" required />
        </label>
        <DateField label={t("nc.action_target")} name="target" required />
        <button type="submit">{t("nc.action_add")}</button>
        <OutcomeLine outcome={outcome} small />
      </fieldset>
    </form>
  );
}

/** One action: what, who, by when, and done (or, for the owner, a button that says it is done today). */
function ActionItem(props: { id: string; action: NcAction; owner: boolean; save: (edit: object) => Promise<void> }) {
  const { id, action: a } = props;
  const [outcome, setOutcome] = useState<Outcome>();
  return (
    <li class="item" data-action={id}>
      <p class="note">{a.text}</p>
      <p class="muted small">{t("nc.action_by", { owner: a.owner, date: showDate(a.target) })}</p>
      {a.done_on ? (
        <p class="saved small">{t("nc.action_done_on", { date: showDate(a.done_on) })}</p>
      ) : (
        props.owner && (
          <button
            type="button"
            aria-label={t("nc.action_mark_done_label", { text: a.text })}
            onClick={async () => {
              try {
                await props.save({ edit: "put_action", id, ...a, done_on: today() });
                setOutcome(saved);
              } catch (e) {
                setOutcome(failed(refusal(e)));
              }
            }}
          >
            {t("nc.action_mark_done")}
          </button>
        )
      )}
      <OutcomeLine outcome={outcome} small />
    </li>
  );
}

/** Files attached to the NC, and (for whoever may) a button that attaches one more. */
function NcFiles(props: {
  sync: Sync;
  nc: NcView;
  of: "implementation" | "verification";
  may: boolean;
}) {
  const files = props.of === "implementation" ? props.nc.implementation_evidence : props.nc.verification_evidence;
  if (!props.may && files.length === 0) return null;
  return (
    <section data-evidence={props.of}>
      <h3>{t(`nc.evidence.${props.of}` as Key)}</h3>
      {files.length === 0 && <p class="muted">{t("nc.not_given")}</p>}
      <Files sync={props.sync} files={files} />
      {props.may && (
        <AddFile
          sync={props.sync}
          pdf
          label={t("file.add_evidence")}
          attach={(file) => props.sync.edit(props.nc.id, { edit: "attach_nc_evidence", of: props.of, file })}
        />
      )}
    </section>
  );
}

/** The verification: what an independent auditor saw, and on which day. */
function Verification(props: { nc: NcView; may: boolean; save: (edit: object) => Promise<void> }) {
  const v = props.nc.verification;
  const [note, setNote] = useState<string>();
  const [on, setOn] = useState(() => showDate(v?.on ?? today()));
  const [outcome, setOutcome] = useState<Outcome>();
  if (!props.may) {
    if (!v) return null;
    return (
      <section>
        <h3>{t("nc.verification")}</h3>
        <p class="note">{v.note}</p>
        <p class="muted small">{t("audit.by", { user: v.by, date: showDate(v.on) })}</p>
      </section>
    );
  }
  const text = note ?? v?.note ?? "";
  const onIso = parseDate(on);
  return (
    <section class="field">
      <label>
        {t("nc.verification")}
        <textarea rows={3} value={text} onInput={(e) => setNote(e.currentTarget.value)} />
      </label>
      <DateField label={t("nc.verified_on")} value={on} max={today()} onText={setOn} />
      <button
        type="button"
        disabled={!text.trim() || !onIso || !!dateProblem(on, undefined, today())}
        onClick={async () => {
          try {
            await props.save({ edit: "set_verification", note: text, on: onIso });
            setNote(undefined);
            setOutcome(saved);
          } catch (e) {
            setOutcome(failed(refusal(e)));
          }
        }}
      >
        {t("nc.save", { what: t("nc.verification") })}
      </button>
      <OutcomeLine outcome={outcome} small />
    </section>
  );
}

export interface ExtensionRequest {
  id: string;
  of: string;
  due: string;
  justification: string;
  by: string;
  at: string;
  answer: { granted: boolean; by: string; at: string; reason: string } | null;
}

/** The nodal officer's answer to one pending request: grant as asked, or refuse with a reason. */
function Answer(props: { q: ExtensionRequest; save: (edit: object) => Promise<void> }) {
  const [reason, setReason] = useState("");
  const [outcome, setOutcome] = useState<Outcome>();
  async function answer(edit: object) {
    try {
      await props.save(edit);
      setOutcome(saved);
    } catch (e) {
      setOutcome(failed(refusal(e)));
    }
  }
  return (
    <div class="field">
      <button type="button" onClick={() => answer({ edit: "grant_extension", request: props.q.id })}>
        {t("nc.request_grant", { date: showDate(props.q.due) })}
      </button>
      <label>
        {t("nc.request_refuse_why")}
        <textarea rows={2} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
      </label>
      <button
        type="button"
        disabled={!reason.trim()}
        onClick={() => answer({ edit: "refuse_extension", request: props.q.id, reason })}
      >
        {t("nc.request_refuse")}
      </button>
      <OutcomeLine outcome={outcome} small />
    </div>
  );
}

/**
 * Due-date extensions: the owner's requests with their answers, those
 * granted; the owner's form that asks for one, and the nodal officer's
 * answers and own form that grants one.
 */
function Extensions(props: { nc: NcView; owner: boolean; nodal: boolean; save: (edit: object) => Promise<void> }) {
  const { nc } = props;
  const [outcome, setOutcome] = useState<Outcome>();
  // The due date running now: the response's until the plan is accepted, then the actions'.
  const of = nc.state === "open" ? "response" : "action";
  // The rules offer extensions (and requests for them) only while a due date runs.
  const waiting = nc.extension_requests.some((q) => !q.answer);
  const ask = props.owner && !waiting;
  if (nc.extensions.length === 0 && nc.extension_requests.length === 0 && !(props.nodal || props.owner)) {
    return null;
  }
  const submit = savingForm((data) => {
    const [due, why] = [formDate(data, "due"), String(data.get("why"))];
    return props.save(
      ask
        ? { edit: "request_extension", id: itemId("q"), of, due, justification: why }
        : { edit: "extend", of, due, justification: why },
    );
  }, setOutcome);
  return (
    <section data-extensions>
      <h3>{t("nc.extensions")}</h3>
      <ul class="items">
        {[
          ...nc.extension_requests.map((q) => ({
            at: q.at,
            item: (
              <li class="item small" key={q.id} data-request={q.id}>
                {t(`nc.request.${q.of}` as Key, { date: showDate(q.due) })} ·{" "}
                {t("audit.by", { user: q.by, date: showDate(q.at) })}
                <p class="note">{q.justification}</p>
                {q.answer === null ? (
                  <p class="overdue">{t("nc.request_waiting")}</p>
                ) : q.answer.granted ? (
                  <p class="saved">{t("nc.request_granted", { user: q.answer.by, date: showDate(q.answer.at) })}</p>
                ) : (
                  <p class="error">
                    {t("nc.request_refused", { user: q.answer.by, date: showDate(q.answer.at), reason: q.answer.reason })}
                  </p>
                )}
                {q.answer === null && props.nodal && <Answer q={q} save={props.save} />}
              </li>
            ),
          })),
          // Extensions granted on the officer's own motion (a granted request shows with its request).
          ...nc.extensions
            .filter((x) => !x.request)
            .map((x) => ({
              at: x.at,
              item: (
                <li class="item small" key={x.at}>
                  {t(`nc.extension.${x.of}` as Key, { date: showDate(x.due) })} ·{" "}
                  {t("audit.by", { user: x.by, date: showDate(x.at) })}
                  <p class="note">{x.justification}</p>
                </li>
              ),
            })),
        ]
          .sort((a, b) => a.at.localeCompare(b.at))
          .map((e) => e.item)}
      </ul>
      {(ask || props.nodal) && (
        <form class="wide" onSubmit={submit}>
          <fieldset>
            <legend>{t(ask ? (`nc.ask.${of}` as Key) : (`nc.extend.${of}` as Key))}</legend>
            <DateField label={t("nc.extend_due")} name="due" min={nc.due ?? undefined} required />
            <label>
              {t("nc.extend_why")}
              <textarea name="why" rows={2} required minLength={15} />
            </label>
            <button type="submit">{t(ask ? "nc.ask_submit" : "nc.extend_grant")}</button>
            <OutcomeLine outcome={outcome} small />
          </fieldset>
        </form>
      )}
    </section>
  );
}

/** The moves this user may make now; those that need a reason take it first. */
function NcMoves(props: { sync: Sync; nc: NcView }) {
  const { sync, nc } = props;
  const [reason, setReason] = useState("");
  const [outcome, setOutcome] = useState<Outcome>();
  const allowed = MOVES.filter(([mv]) => JSON.parse(sync.device.may_edit(nc.id, JSON.stringify({ move: mv }), today())).ok);
  if (allowed.length === 0) return null;
  async function move(mv: string) {
    try {
      await sync.edit(nc.id, { edit: "move", move: mv, note: reason });
      setReason("");
      setOutcome(saved);
    } catch (e) {
      setOutcome(failed(refusal(e)));
    }
  }
  return (
    <section class="moves-panel" aria-label={t("move.heading")}>
      {allowed.some(([, needs]) => needs) && (
        <label>
          {t("nc.reason")}
          <textarea rows={2} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
        </label>
      )}
      <div class="moves">
        {allowed.map(([mv, needs]) => (
          <button type="button" key={mv} disabled={needs && !reason.trim()} onClick={() => move(mv)}>
            {t(`nc.move.${mv}` as Key)}
          </button>
        ))}
      </div>
      <OutcomeLine outcome={outcome} />
    </section>
  );
}

export function NcScreen(props: { sync?: Sync; id: string }) {
  const back = (
    <a class="back" href="#/">
      ← {t("audit.back")}
    </a>
  );
  const nc = props.sync && readNc(props.sync, props.id);
  if (!props.sync || !nc) {
    return (
      <main class="panel">
        {back}
        <p>{t("audit.not_here")}</p>
      </main>
    );
  }
  const sync = props.sync;
  const save = (edit: object) => sync.edit(nc.id, edit);
  // The rules offer the owner's part while the NC is open and once its plan
  // is accepted; the plan is written in the first, the actions marked done in the second.
  const owner = mayWrite(sync, nc.id, "nc_owner_fields");
  const planning = owner && nc.state === "open";
  const doing = owner && nc.state === "plan_accepted";
  const actions = Object.entries(nc.actions);
  return (
    <main class="panel">
      {back}
      <h2>{t("nc.title", { name: ncName(nc) })}</h2>
      <p>
        <span class="audit-state">{t(`nc.state.${nc.state}` as Key)}</span>
      </p>
      <p>
        {t(`finding.class.${nc.class}` as Key)} · {t("audit.clause", { clause: nc.clause })}
        {nc.process && ` · ${t("audit.process", { process: nc.process })}`} ·{" "}
        {t("nc.raised_on", { date: showDate(nc.raised_on) })}
      </p>
      <Due nc={nc} />
      <h3>{t("nc.description")}</h3>
      <p class="note">{nc.description}</p>
      <OwnerText
        label={t("nc.correction")}
        value={nc.correction}
        editable={planning}
        save={(text) => save({ edit: "set_correction", text })}
      />
      <OwnerText
        label={t("nc.root_cause")}
        value={nc.root_cause}
        editable={planning}
        save={(text) => save({ edit: "set_root_cause", text })}
      />
      <h3>{t("nc.actions")}</h3>
      {actions.length === 0 && <p class="muted">{t("nc.not_given")}</p>}
      <ul class="items">
        {actions.map(([aid, a]) => (
          <ActionItem key={aid} id={aid} action={a} owner={doing} save={save} />
        ))}
      </ul>
      {planning && <NewAction save={save} />}
      <NcFiles sync={sync} nc={nc} of="implementation" may={mayWrite(sync, nc.id, "nc_implementation_evidence")} />
      <Verification nc={nc} may={mayWrite(sync, nc.id, "nc_verification")} save={save} />
      <NcFiles sync={sync} nc={nc} of="verification" may={mayWrite(sync, nc.id, "nc_verification_evidence")} />
      <Extensions nc={nc} owner={owner} nodal={mayWrite(sync, nc.id, "nc_extension")} save={save} />
      <NcMoves sync={sync} nc={nc} />
      {nc.events.length > 0 && (
        <>
          <h3>{t("nc.history")}</h3>
          <ul class="items">
            {nc.events.map((e) => (
              <li class="item small" key={e.at + e.move}>
                {t(`nc.done.${e.move}` as Key)} · {t("audit.by", { user: e.by, date: showDate(e.at) })}
                {e.note && <p class="note">{e.note}</p>}
              </li>
            ))}
          </ul>
        </>
      )}
    </main>
  );
}
