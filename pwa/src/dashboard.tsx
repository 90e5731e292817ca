// The nodal officer's dashboard: the merged state of their units at a
// glance, read from the documents the tablet holds (so it works offline and
// agrees with the server once synced): NCs by state, open NCs by age and by
// escalation level, the overdue list, extension requests waiting for an
// answer, audits by status, amendments not yet
// acknowledged, and the management reviews, with a form that opens one.
import { useState } from "preact/hooks";
import { new_document_id } from "../generated/sync-wasm/sync_wasm.js";
import { readAudit } from "./audit";
import { type Key, showDate, t, today } from "./i18n";
import { type NcView, heldNcs, ncName } from "./nc";
import type { Reference } from "./store";
import type { Sync } from "./sync";
import { type Outcome, OutcomeLine, savingForm } from "./ui";

/** The NC states in the order an NC goes through them. */
const NC_STATES = ["draft", "open", "response_submitted", "plan_accepted", "implemented", "closed", "withdrawn"];
const AUDIT_STATES = ["in_progress", "in_review", "report_issued", "closed"];
/** An NC still to be dealt with: raised and neither closed nor withdrawn. */
const LIVE = new Set(["open", "response_submitted", "plan_accepted", "implemented"]);
/** Age buckets of open NCs, in days since raised: [label, up to and including]. */
const AGES: [string, number][] = [
  ["0-15", 15],
  ["16-30", 30],
  ["31-60", 60],
  ["61-90", 90],
  ["91+", Number.POSITIVE_INFINITY],
];

export interface ReviewView {
  kind: "review";
  id: string;
  unit: string;
  title: string;
  held_on: string | null;
  decisions: string[];
  actions: number;
}

/** The units where the user holds one of `roles` today, sorted. */
export function unitsHeld(reference: Reference, roles: string[]): string[] {
  const day = today();
  const held = reference.author.grants.filter(
    (g) => roles.includes(g.role) && g.from <= day && (g.until === null || day <= g.until),
  );
  return [...new Set(held.map((g) => g.unit))].sort();
}

/** Whether the user holds `role` in some unit today. */
const holds = (reference: Reference, role: string) => unitsHeld(reference, [role]).length > 0;

/** Whether the user is a nodal officer of some unit today. */
export const isNodal = (reference: Reference) => holds(reference, "nodal_officer");

/** Whether the user is an administrator today (their work is on the admin API, not on the tablet). */
export const isAdmin = (reference: Reference) => holds(reference, "admin");

function days(from: string, to: string): number {
  return Math.round((Date.parse(to) - Date.parse(from)) / 86_400_000);
}

function count<T>(items: T[], key: (x: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of items) m.set(key(x), (m.get(key(x)) ?? 0) + 1);
  return m;
}

/** A table of counts: one row per label, its count in a cell the tests (and screen readers) find by name. */
export function Counts(props: { id: string; caption: string; rows: [string, string, number][] }) {
  return (
    <table class="counts" id={props.id} data-counts={props.id}>
      <caption>{props.caption}</caption>
      <tbody>
        {props.rows.map(([key, label, n]) => (
          <tr key={key} data-key={key}>
            <th scope="row">{label}</th>
            <td>{n.toLocaleString("en-IN")}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function readReviews(sync: Sync): ReviewView[] {
  const out: ReviewView[] = [];
  for (const id of sync.device.documents()) {
    try {
      const v = JSON.parse(sync.device.review_view(id));
      if (v.kind === "review") out.push(v);
    } catch {
      // Not a review.
    }
  }
  return out.sort((a, b) => a.title.localeCompare(b.title, "en", { numeric: true }));
}

/** Opens a management review of a unit: a new document, on the tablet first. */
function OpenReview(props: { sync: Sync; units: string[] }) {
  const [outcome, setOutcome] = useState<Outcome>();
  const submit = savingForm((data) => {
    const id = new_document_id(Date.now(), crypto.getRandomValues(new Uint8Array(10)));
    return props.sync.edit(id, { edit: "create_review", unit: String(data.get("unit")), title: String(data.get("title")) });
  }, setOutcome);
  return (
    <form class="wide" onSubmit={submit}>
      <fieldset>
        <legend>{t("dash.review_open")}</legend>
        <label>
          {t("dash.review_unit")}
          <select name="unit">
            {props.units.map((u) => (
              <option key={u} value={u}>
                {u}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t("dash.review_title")}
          <input name="title" required maxLength={200} placeholder="MR-1" />
        </label>
        <button type="submit">{t("dash.review_submit")}</button>
        <OutcomeLine outcome={outcome} small />
      </fieldset>
    </form>
  );
}

/** One row per unit (an apex officer's units and those below): its open NCs, overdue NCs and audits held. */
function ByUnit(props: { units: string[]; ncs: NcView[]; audits: string[] }) {
  const live = props.ncs.filter((n) => LIVE.has(n.state));
  const open = count(live, (n) => n.unit);
  const late = count(
    live.filter((n) => (n.days_overdue ?? 0) > 0),
    (n) => n.unit,
  );
  const audits = count(props.audits, (u) => u);
  const n = (m: Map<string, number>, u: string) => (m.get(u) ?? 0).toLocaleString("en-IN");
  return (
    <table class="counts wide" id="units">
      <caption>{t("dash.by_unit")}</caption>
      <thead>
        <tr>
          <th scope="col">{t("dash.unit")}</th>
          <th scope="col">{t("dash.col_open")}</th>
          <th scope="col">{t("dash.col_overdue")}</th>
          <th scope="col">{t("dash.col_audits")}</th>
        </tr>
      </thead>
      <tbody>
        {props.units.map((u) => (
          <tr key={u} data-unit={u}>
            <th scope="row">{u}</th>
            <td data-col="open">{n(open, u)}</td>
            <td data-col="overdue">{n(late, u)}</td>
            <td data-col="audits">{n(audits, u)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Dashboard(props: { sync: Sync; reference: Reference }) {
  const { sync, reference } = props;
  const day = today();
  const held = heldNcs(sync);
  const heldAudits = sync.device
    .documents()
    .map((id) => readAudit(sync, id))
    .filter((a) => a !== undefined);
  // The units of the officer's grants: the server carries a nodal officer's
  // role down the unit tree, so an apex officer's include every unit below.
  const units = [
    ...new Set(reference.author.grants.filter((g) => g.role === "nodal_officer").map((g) => g.unit)),
  ].sort();
  const [unit, setUnit] = useState("");
  const inUnit = (u: string) => unit === "" || u === unit;
  const ncs = held.filter((n) => inUnit(n.unit));
  const live = ncs.filter((n) => LIVE.has(n.state));
  const overdue = live.filter((n) => (n.days_overdue ?? 0) > 0);
  const asking = live.flatMap((n) => n.extension_requests.filter((q) => !q.answer).map((q) => ({ n, q })));
  const byState = count(ncs, (n) => n.state);
  const byAge = count(live, (n) => AGES.find(([, most]) => days(n.raised_on, day) <= most)![0]);
  const byLevel = count(live, (n) => n.escalation ?? "none");
  const audits = heldAudits.filter((a) => inUnit(a.header.unit));
  const byAudit = count(audits, (a) => a.state);
  const notBegun = reference.audits.filter((a) => !a.begun && inUnit(a.unit) && !readAudit(sync, a.id)).length;
  const amendments = (reference.amendments ?? [])
    .map((a) => ({ ...a, pending: a.pending.filter(inUnit) }))
    .filter((a) => a.pending.length > 0);
  const reviews = readReviews(sync).filter((r) => inUnit(r.unit));
  const levels = [...byLevel.keys()].sort();
  return (
    <section class="dashboard" aria-labelledby="dash-heading">
      <h2 id="dash-heading">{t("dash.heading")}</h2>
      <p class="report-links">
        <a href="#/reports/nc-ageing">{t("report.link")}</a>
        <a href="#/reports/adherence">{t("report.adherence.link")}</a>
        <a href="#/reports/quarantine">{t("report.quarantine.link")}</a>
      </p>
      {units.length > 1 && (
        <label class="unit-pick">
          {t("dash.unit")}
          <select value={unit} onChange={(e) => setUnit(e.currentTarget.value)}>
            <option value="">{t("dash.all_units")}</option>
            {units.map((u) => (
              <option key={u} value={u}>
                {u}
              </option>
            ))}
          </select>
        </label>
      )}
      <p class="muted small">{t("dash.as_held", { date: showDate(day) })}</p>
      {units.length > 1 && unit === "" && <ByUnit units={units} ncs={held} audits={heldAudits.map((a) => a.header.unit)} />}
      <div class="tiles">
        <Counts
          id="nc-states"
          caption={t("dash.nc_states")}
          rows={NC_STATES.map((s) => [s, t(`nc.state.${s}` as Key), byState.get(s) ?? 0])}
        />
        <Counts
          id="nc-ages"
          caption={t("dash.nc_ages")}
          rows={AGES.map(([label]) => [label, t("dash.days", { range: label }), byAge.get(label) ?? 0])}
        />
        <Counts
          id="nc-levels"
          caption={t("dash.nc_levels")}
          rows={levels.map((l) => [l, l === "none" ? t("dash.level_none") : t("nc.level", { level: l }), byLevel.get(l) ?? 0])}
        />
        <Counts
          id="audit-states"
          caption={t("dash.audits")}
          rows={[
            ["planned", t("audit.state.planned"), notBegun],
            ...AUDIT_STATES.map((s): [string, string, number] => [s, t(`audit.state.${s}` as Key), byAudit.get(s) ?? 0]),
          ]}
        />
      </div>
      <h3>{t("dash.overdue", { count: overdue.length })}</h3>
      {overdue.length === 0 && <p class="muted">{t("dash.overdue_none")}</p>}
      <ul class="items" id="overdue">
        {overdue.map((n: NcView) => (
          <li class="item" key={n.id} data-nc={n.id}>
            <a href={`#/nc/${n.id}`}>{ncName(n)}</a> · {t(`nc.state.${n.state}` as Key)}
            <p class="overdue small">
              {t("nc.overdue", { days: n.days_overdue ?? 0 })}
              {n.escalation ? ` · ${t("nc.level", { level: n.escalation })}` : ""}
              {n.process ? ` · ${t("audit.process", { process: n.process })}` : ""}
            </p>
          </li>
        ))}
      </ul>
      <h3>{t("dash.requests", { count: asking.length })}</h3>
      {asking.length === 0 && <p class="muted">{t("dash.requests_none")}</p>}
      <ul class="items" id="requests">
        {asking.map(({ n, q }) => (
          <li class="item" key={q.id} data-nc={n.id}>
            <a href={`#/nc/${n.id}`}>{ncName(n)}</a> · {t(`nc.request.${q.of}` as Key, { date: showDate(q.due) })}
            <p class="note small">{q.justification}</p>
          </li>
        ))}
      </ul>
      <h3>{t("dash.amendments")}</h3>
      {amendments.length === 0 && <p class="muted">{t("dash.amendments_none")}</p>}
      <ul class="items" id="amendments">
        {amendments.map((a) => (
          <li class="item" key={a.id} data-amendment={a.id}>
            <p class="question">
              {a.id} · {t("dash.amendment_issued", { date: showDate(a.issued_on), authority: a.authority })}
            </p>
            <p class="note">{a.note}</p>
            <p class="overdue small">{t("dash.amendment_pending", { units: a.pending.join(", ") })}</p>
          </li>
        ))}
      </ul>
      <h3>{t("dash.reviews")}</h3>
      {reviews.length === 0 && <p class="muted">{t("dash.reviews_none")}</p>}
      <ul class="items" id="reviews">
        {reviews.map((r) => (
          <li class="item" key={r.id} data-review={r.id}>
            <p class="question">
              {r.title} · {r.unit}
            </p>
            <p class="muted small">
              {r.held_on ? t("dash.review_held", { date: showDate(r.held_on) }) : t("dash.review_not_held")}
            </p>
          </li>
        ))}
      </ul>
      <OpenReview sync={sync} units={units} />
    </section>
  );
}
