// An audit as the auditor opens it: its checklist grouped by clause, each
// item with its answer buttons, its note and who answered; answers given at
// the same time on two tablets side by side until the lead chooses one; the
// findings raised, and the lead's moves. The audit, its rules, its gaps and
// every "may I?" are read through the wasm build, and every edit is on the
// tablet's disk before the item says it is saved.
import { useEffect, useMemo, useState } from "preact/hooks";
import { AddFile, Files } from "./evidence";
import type { Evidence } from "./files";
import { FindingForm } from "./finding";
import { heldNcs, ncName } from "./nc";
import { type Key, parseDate, showDate, t } from "./i18n";
import { mayAnswer, movesAllowed } from "./snapshot";
import type { Reference, Snapshot, TemplateItem } from "./store";
import type { Sync } from "./sync";
import { DateField, type Outcome, OutcomeLine, failed, refusal, saved } from "./ui";

export interface Answer {
  cpna?: string;
  yn?: string;
  text?: string;
  number?: number;
  date?: string;
}

export interface Response {
  answer: Answer | "photo";
  note: string;
  evidence: Evidence[];
  by: string;
  at: string;
}

export interface FindingView {
  class: string;
  clause: string;
  process: string | null;
  text: string;
  evidence: Evidence[];
  by: string;
  at: string;
}

export interface AuditView {
  id: string;
  header: { unit: string; number: string; lead: string; team: string[] };
  state: string;
  locked: boolean;
  responses: Record<string, Response>;
  contested_responses: Record<string, Response[]>;
  findings: Record<string, FindingView>;
  gaps: { key: string; kind: string }[] | null;
}

interface Rule {
  answer: string;
  evidence: boolean;
  required: "always" | "optional" | { when: unknown };
}

/** The answers offered, by answer type, as stored. */
const CHOICES: Record<string, [string, Key][]> = {
  cpna: [
    ["conform", "answer.conform"],
    ["partly", "answer.partly"],
    ["not_conform", "answer.not_conform"],
    ["na", "answer.na"],
  ],
  yn: [
    ["yes", "answer.yes"],
    ["no", "answer.no"],
    ["na", "answer.na"],
  ],
};

/** An answer in the words of the language shown. */
function words(a: Answer | "photo"): string {
  if (a === "photo") return t("answer.photo");
  if (a.cpna) return t(`answer.${a.cpna}` as Key);
  if (a.yn) return t(`answer.${a.yn}` as Key);
  if (a.date) return showDate(a.date);
  if (a.number !== undefined) return a.number.toLocaleString("en-IN");
  return a.text ?? "";
}

function Given(props: { r: Response; sync?: Sync }) {
  return (
    <>
      <p class="answer">{words(props.r.answer)}</p>
      {props.r.note && <p class="note">{props.r.note}</p>}
      <Files sync={props.sync} files={props.r.evidence} />
      <p class="muted small">
        {t("audit.by", { user: props.r.by, date: showDate(props.r.at) })}
        {props.r.evidence.length > 0 && ` · ${t("audit.files", { count: props.r.evidence.length })}`}
      </p>
    </>
  );
}

type Save = (edit: object) => Promise<void>;

/** One item: its question, marks, answer (or both answers) and, for those who may, the controls. */
function Item(props: {
  rkey: string;
  rule: Rule;
  question: string;
  view: AuditView;
  editable: boolean;
  lead: boolean;
  save: Save;
  /** Absent while the screen is drawn from its snapshot. */
  sync?: Sync;
}) {
  const { rkey, rule, view, editable } = props;
  const given = view.responses[rkey];
  const contest = view.contested_responses[rkey];
  const process = rkey.split("@")[1];
  const [status, setStatus] = useState<Outcome>();
  const [note, setNote] = useState<string>();
  const [value, setValue] = useState<string>();
  const current = given?.answer !== "photo" ? given?.answer : undefined;
  const noteNow = note ?? given?.note ?? "";

  async function answer(a: Answer | "photo", withNote = noteNow, evidence = given?.evidence ?? []) {
    setStatus(undefined);
    try {
      await props.save({ edit: "set_response", key: rkey, answer: a, note: withNote, evidence });
      setNote(undefined);
      setValue(undefined);
      setStatus(saved);
    } catch (e) {
      setStatus(failed(refusal(e)));
    }
  }

  const choices = CHOICES[rule.answer];
  const label = `${props.question}${process ? ` (${process})` : ""}`;
  const typed = (): Answer | undefined => {
    const v = value ?? "";
    if (rule.answer === "text") return v.trim() ? { text: v } : undefined;
    if (rule.answer === "number") return /^-?\d+$/.test(v.trim()) ? { number: Number(v) } : undefined;
    if (rule.answer === "date") {
      const date = parseDate(v);
      return date ? { date } : undefined;
    }
    return undefined;
  };
  const shown = rule.answer === "text" ? current?.text : current?.number;

  return (
    <li class={contest ? "item contested" : "item"} data-key={rkey}>
      <p class="question" id={`q-${rkey}`}>
        {props.question}
        {process && <span class="tag">{t("audit.process", { process })}</span>}
        {rule.required === "always" && <span class="tag">{t("audit.required")}</span>}
        {typeof rule.required === "object" && <span class="tag">{t("audit.conditional")}</span>}
      </p>
      {rule.evidence && <p class="muted small">{t("audit.evidence_needed")}</p>}
      {contest ? (
        <div class="contest" role="group" aria-label={t("audit.contested")}>
          <p class="contest-title">
            <span aria-hidden="true">⚠ </span>
            {t("audit.contested")}
          </p>
          <div class="values">
            {contest.map((r) => (
              <div class="value" key={r.by + r.at}>
                <Given r={r} sync={props.sync} />
                {props.lead && editable && (
                  <button
                    type="button"
                    aria-label={t("audit.choose_label", { answer: words(r.answer), user: r.by })}
                    // The merged response holds every value's files: none is lost by the choice.
                    onClick={() => answer(r.answer, r.note, given?.evidence ?? r.evidence)}
                  >
                    {t("audit.choose")}
                  </button>
                )}
              </div>
            ))}
          </div>
          <p class="muted small">{t("audit.contested_help")}</p>
        </div>
      ) : given ? (
        <Given r={given} sync={props.sync} />
      ) : (
        <p class="muted">{t("audit.unanswered")}</p>
      )}
      {editable && !contest && (
        <div class="controls">
          {choices ? (
            <div class="choices" role="group" aria-labelledby={`q-${rkey}`}>
              {choices.map(([stored, key]) => {
                const on = (rule.answer === "cpna" ? current?.cpna : current?.yn) === stored;
                return (
                  <button
                    type="button"
                    key={stored}
                    class={`choice ${stored}`}
                    aria-pressed={on}
                    onClick={() => answer(rule.answer === "cpna" ? { cpna: stored } : { yn: stored })}
                  >
                    {on && <span aria-hidden="true">✓ </span>}
                    {t(key)}
                  </button>
                );
              })}
            </div>
          ) : rule.answer === "photo" ? null : (
            <div class="typed">
              {rule.answer === "date" ? (
                <DateField
                  label={t("item.value")}
                  value={value ?? (current?.date ? showDate(current.date) : "")}
                  describedBy={`q-${rkey}`}
                  onText={setValue}
                />
              ) : (
                <label>
                  {t("item.value")}
                  <input
                    // One input for the two typed answers (the attribute types split by value).
                    type={(rule.answer === "number" ? "number" : "text") as "text"}
                    value={value ?? (shown === undefined ? "" : String(shown))}
                    aria-describedby={`q-${rkey}`}
                    onInput={(e) => setValue(e.currentTarget.value)}
                  />
                </label>
              )}
              <button
                type="button"
                disabled={value === undefined || !typed()}
                onClick={() => {
                  const a = typed();
                  if (a) answer(a);
                }}
              >
                {t("item.save")}
              </button>
            </div>
          )}
          <details class="note-edit" open={note !== undefined}>
            <summary>{t(given?.note ? "item.note_edit" : "item.note_add")}</summary>
            <label>
              {t("item.note")}
              <textarea
                rows={3}
                value={noteNow}
                aria-description={label}
                onInput={(e) => setNote(e.currentTarget.value)}
              />
            </label>
            <button
              type="button"
              disabled={note === undefined || !given}
              title={given ? undefined : t("item.note_needs_answer")}
              onClick={() => given && answer(given.answer, noteNow)}
            >
              {t("item.note_save")}
            </button>
            {!given && <p class="muted small">{t("item.note_needs_answer")}</p>}
          </details>
          <div class="actions">
            <AddFile
              sync={props.sync}
              disabled={!given && rule.answer !== "photo"}
              attach={async (e) => {
                const files = [...(given?.evidence ?? []), e];
                await props.save({ edit: "set_response", key: rkey, answer: given?.answer ?? "photo", note: noteNow, evidence: files });
                setNote(undefined);
              }}
            />
            <a class="raise" href={`#/audit/${view.id}/finding/${encodeURIComponent(rkey)}`}>
              {t("finding.raise")}
            </a>
          </div>
          {!given && rule.answer !== "photo" && <p class="muted small">{t("file.needs_answer")}</p>}
        </div>
      )}
      <OutcomeLine outcome={status} small />
    </li>
  );
}

/** The lead's moves that the rules allow now, each with what it does. */
function Moves(props: { allowed: string[]; save: Save }) {
  const [status, setStatus] = useState<Outcome>();
  if (props.allowed.length === 0) return null;
  async function move(mv: string) {
    setStatus(undefined);
    try {
      await props.save({ edit: "move", move: mv, note: "" });
      setStatus(saved);
    } catch (e) {
      setStatus(failed(refusal(e)));
    }
  }
  return (
    <section class="moves" aria-label={t("move.heading")}>
      {props.allowed.map((mv) => (
        <button type="button" key={mv} onClick={() => move(mv)}>
          {t(`move.${mv}` as Key)}
        </button>
      ))}
      <OutcomeLine outcome={status} />
    </section>
  );
}

/** Template items by key, for the audit's pinned version. */
function itemsOf(reference: Reference, version: number): Map<string, TemplateItem> {
  const template = reference.templates.find((tp) => tp.version === version);
  return new Map((template?.items ?? []).map((i) => [i.key, i]));
}

/** The performance marks of the checklist's first screenful and of the whole of it, once per page. */
const SHOWN = "sqm:checklist-shown";
const COMPLETE = "sqm:checklist-complete";
const LIVE = "sqm:checklist-live";

/** Items drawn at once when an audit opens (more than a tablet's screen holds); the rest follow in the next frame. */
const FIRST_ITEMS = 12;

function markOnce(name: string) {
  if (performance.getEntriesByName(name).length === 0) performance.mark(name);
}

export function readAudit(sync: Sync | undefined, id: string): AuditView | undefined {
  try {
    if (sync?.device.documents().includes(id)) return JSON.parse(sync.device.audit_view(id));
  } catch {
    // Its first changes are still on their way.
  }
  return undefined;
}

export function AuditScreen(props: {
  id: string;
  finding?: string;
  reference: Reference;
  sync?: Sync;
  /** The audit's screen kept on the tablet, drawn while the device is on its way. */
  snapshot?: Snapshot;
  /** The device once it is ready: an edit made from the snapshot waits for it. */
  live?: Promise<Sync | undefined>;
}) {
  const planned = props.reference.audits.find((a) => a.id === props.id);
  const plan = props.reference.author.planned?.[props.id];
  const sync = props.sync;
  const early = sync ? undefined : props.snapshot;
  const kept = useMemo(() => early && (JSON.parse(early.view) as AuditView), [early]);
  const view = kept ?? readAudit(sync, props.id);
  const shown = Boolean(planned && plan && view && (sync || early) && props.finding === undefined);
  // The first screenful is drawn at once, the rest once it is on the screen.
  const [whole, setWhole] = useState(false);
  // When the checklist is first on the screen, whole, and live (the browser suite's benchmark reads them).
  useEffect(() => {
    if (!shown) return;
    markOnce(SHOWN);
    if (sync) markOnce(LIVE);
    if (whole) markOnce(COMPLETE);
    else setWhole(true);
  });
  const back = (
    <a class="back" href="#/">
      ← {t("audit.back")}
    </a>
  );
  if (!planned || !plan || !view || !(sync || early)) {
    return (
      <main class="panel">
        {back}
        <p>{t(view ? "audit.no_checklist" : "audit.not_here")}</p>
      </main>
    );
  }
  const template = itemsOf(props.reference, plan.checklist.version);
  const rules = plan.checklist.items as Record<string, Rule>;
  if (props.finding !== undefined) {
    if (!sync) return <main class="panel" aria-busy="true" />;
    const item = template.get(props.finding.split("@")[0]);
    return <FindingForm sync={sync} view={view} rkey={props.finding} item={item} />;
  }
  const groups = new Map<string, [string, Rule, TemplateItem | undefined][]>();
  for (const [rkey, rule] of Object.entries(rules)) {
    const item = template.get(rkey.split("@")[0]);
    const clause = item?.clause ?? "";
    if (!groups.has(clause)) groups.set(clause, []);
    groups.get(clause)!.push([rkey, rule, item]);
  }
  const clauses = [...groups.keys()].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  const may = sync ? mayAnswer(sync.device, props.id) : early!.may;
  const lead = props.reference.author.audits[props.id] === "lead";
  const moves = !lead ? [] : sync ? movesAllowed(sync.device, props.id) : early!.moves;
  const live = props.live;
  const save: Save = sync
    ? (edit) => sync.edit(props.id, edit)
    : async (edit) => {
        const ready = await live;
        if (!ready) throw new Error(t("edit.not_ready"));
        await ready.edit(props.id, edit);
      };
  const findings = Object.entries(view.findings);
  const ncs = findings.length > 0 && sync ? heldNcs(sync).filter((n) => n.audit === view.id) : [];
  let budget = FIRST_ITEMS;
  return (
    <main class="panel">
      {back}
      <h2>{planned.number}</h2>
      <p>
        <span class="audit-state">{t(`audit.state.${view.state}` as Key)}</span>
      </p>
      {!may.ok && (
        <p class="notice" role="note">
          {!view.locked
            ? t("edit.refused", { reason: may.message ?? "" })
            : view.state === "in_review"
              ? t("audit.locked_review")
              : t("audit.locked")}
        </p>
      )}
      {view.gaps && view.gaps.length > 0 && <p class="muted">{t("audit.gaps", { count: view.gaps.length })}</p>}
      <Moves allowed={moves} save={save} />
      {clauses.map((clause) => {
        const items = groups.get(clause)!;
        const before = budget;
        budget -= items.length;
        if (!whole && before <= 0) return null;
        const done = items.filter(([k]) => view.responses[k]).length;
        return (
          <section class="clause" key={clause}>
            <h3>
              {clause ? t("audit.clause", { clause }) : t("audit.general")}{" "}
              <span class="progress">{t("audit.progress", { done, total: items.length })}</span>
            </h3>
            <ul class="items">
              {(whole ? items : items.slice(0, before)).map(([rkey, rule, item]) => (
                <Item
                  key={rkey}
                  rkey={rkey}
                  rule={rule}
                  question={item?.question ?? rkey}
                  view={view}
                  editable={may.ok}
                  lead={lead}
                  save={save}
                  sync={sync}
                />
              ))}
            </ul>
          </section>
        );
      })}
      {whole && (
        <section class="clause">
          <h3>{t("finding.heading")}</h3>
          {findings.length === 0 && <p class="muted">{t("finding.none")}</p>}
          <ul class="items">
            {findings.map(([fid, f]) => (
              <li class="item" key={fid} data-finding={fid}>
                <p class="question">
                  {t(`finding.class.${f.class}` as Key)} · {t("audit.clause", { clause: f.clause })}
                  {f.process && <span class="tag">{t("audit.process", { process: f.process })}</span>}
                </p>
                <p class="note">{f.text}</p>
                <Files sync={sync} files={f.evidence} />
                <p class="muted small">{t("audit.by", { user: f.by, date: showDate(f.at) })}</p>
                {ncs
                  .filter((n) => n.finding === fid)
                  .map((n) => (
                    <a class="raise" key={n.id} href={`#/nc/${n.id}`}>
                      {t("finding.nc", { name: ncName(n), state: t(`nc.state.${n.state}` as Key) })}
                    </a>
                  ))}
              </li>
            ))}
          </ul>
        </section>
      )}
    </main>
  );
}
