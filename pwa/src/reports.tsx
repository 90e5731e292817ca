// The reports the server reads from its projection rows (issue 17): the
// NC ageing of a unit and the units below it, filtered, shown as a table,
// downloaded as CSV or printed. A report is the server's merged view of
// every tablet's work, so it needs a connection; the screen says so.
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { Counts, unitsHeld } from "./dashboard";
import { type Key, showDate, t, today } from "./i18n";
import type { NcView } from "./nc";
import type { Reference } from "./store";
import type { Sync } from "./sync";
import { DateField, type Outcome, OutcomeLine, failed, formDate, ruleText } from "./ui";

interface Count {
  label: string;
  count: number;
}

interface AgeingRow {
  id: string;
  number: string | null;
  unit: string;
  process: string;
  clause: string;
  class: string;
  owner: string | null;
  state: NcView["state"];
  raised_on: string;
  age_days: number;
  bucket: string;
  due: string | null;
  days_overdue: number | null;
  escalation: string | null;
}

interface Ageing {
  as_of: string;
  units: string[];
  buckets: Count[];
  levels: Count[];
  ncs: AgeingRow[];
  devices: { device: string; username: string; last_synced: string }[];
}

const n = (x: number) => x.toLocaleString("en-IN");
const bucketWords = (label: string) => (label === "over 90" ? t("report.over_90") : t("dash.days", { range: label }));
const levelWords = (label: string) => (label === "none" ? t("dash.level_none") : t("nc.level", { level: label }));

/** An instant (ISO 8601, UTC) as people read it, on the tablet's clock: 15-01-2026 12:00. */
function shownInstant(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const two = (x: number) => String(x).padStart(2, "0");
  return `${two(d.getDate())}-${two(d.getMonth() + 1)}-${d.getFullYear()} ${two(d.getHours())}:${two(d.getMinutes())}`;
}

/** The units whose reports the user may read: those where they are a nodal officer or admin today. */
const reportUnits = (reference: Reference) => unitsHeld(reference, ["nodal_officer", "admin"]);

/** What the server says when it refuses: its message, or the status. */
async function reason(res: Response): Promise<string> {
  const body = await res.json().catch(() => ({}));
  return body.message ?? `${res.status} ${res.statusText}`;
}

/**
 * A report read from the server under the session: the last one read (kept
 * on the screen when a later read fails), what was said, and its CSV and
 * printable forms fetched on demand with the same query.
 */
function useServerReport<T>(sync: Sync) {
  const [query, setQuery] = useState<string>();
  const [report, setReport] = useState<T>();
  const [outcome, setOutcome] = useState<Outcome>();
  const [busy, setBusy] = useState(false);

  async function read(q: string, format: string): Promise<Response | undefined> {
    if (!navigator.onLine) {
      setOutcome(failed(t("report.offline")));
      return undefined;
    }
    try {
      const res = await sync.get(`${q}${q.includes("?") ? "&" : "?"}format=${format}`);
      if (res.ok) return res;
      setOutcome(failed(t("report.failed", { reason: await reason(res) })));
    } catch {
      setOutcome(failed(t("report.offline")));
    }
    return undefined;
  }

  async function fetchReport(q: string) {
    setOutcome(undefined);
    setBusy(true);
    const res = await read(q, "json");
    setBusy(false);
    if (!res) return;
    setReport((await res.json()) as T);
    setQuery(q);
  }

  async function download() {
    if (!query) return;
    const res = await read(query, "csv");
    if (!res) return;
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement("a");
    a.href = url;
    a.download = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") ?? "")?.[1] ?? "report.csv";
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  async function print() {
    if (!query) return;
    // The window opens on the tap (a browser blocks one opened later), then takes the page.
    const w = window.open("", "_blank");
    const res = await read(query, "html");
    if (!res || !w) {
      w?.close();
      return;
    }
    w.document.open();
    w.document.write(await res.text());
    w.document.close();
    w.focus();
    w.print();
  }

  return { report, outcome, busy, fetchReport, download, print };
}

function ReportActions(props: { download: () => void; print: () => void }) {
  return (
    <div class="report-actions">
      <button type="button" onClick={props.download}>
        {t("report.csv")}
      </button>
      <button type="button" onClick={props.print}>
        {t("report.print")}
      </button>
    </div>
  );
}

/**
 * A report's page: its title and what it holds, a form that asks for a unit
 * (with those below), the date if the report takes one and its own fields,
 * what was said of the last read, and the report read last.
 */
function ReportPage(props: {
  report: string;
  title: Key;
  what: Key;
  legend: Key;
  reference: Reference;
  dated: boolean;
  busy: boolean;
  outcome?: Outcome;
  fetchReport: (path: string) => Promise<void>;
  fields?: ComponentChildren;
  children?: ComponentChildren;
}) {
  async function show(e: Event) {
    e.preventDefault();
    const data = new FormData(e.currentTarget as HTMLFormElement);
    const params = new URLSearchParams();
    if (props.dated) params.set("as_of", formDate(data, "as_of"));
    for (const [name, value] of data) {
      const v = String(value).trim();
      if (name !== "unit" && name !== "as_of" && v) params.set(name, v);
    }
    const unit = encodeURIComponent(String(data.get("unit")));
    await props.fetchReport(`/api/v1/reports/units/${unit}/${props.report}${params.size ? `?${params}` : ""}`);
  }
  return (
    <main class="panel">
      <a class="back" href="#/">
        ← {t("audit.back")}
      </a>
      <h2>{t(props.title)}</h2>
      <p class="muted">{t(props.what)}</p>
      <form class="wide report-form" onSubmit={show}>
        <fieldset>
          <legend>{t(props.legend)}</legend>
          <label>
            {t("report.unit")}
            <select name="unit">
              {reportUnits(props.reference).map((u) => (
                <option key={u} value={u}>
                  {u}
                </option>
              ))}
            </select>
          </label>
          {props.dated && <DateField label={t("report.as_of")} name="as_of" defaultValue={showDate(today())} required />}
          {props.fields}
          <button type="submit" disabled={props.busy}>
            {t("report.show")}
          </button>
        </fieldset>
      </form>
      <OutcomeLine outcome={props.outcome} />
      {props.children}
    </main>
  );
}

export function NcAgeing(props: { sync: Sync; reference: Reference }) {
  const { report, outcome, busy, fetchReport, download, print } = useServerReport<Ageing>(props.sync);
  const fields = (
    <>
      <label>
        {t("report.process")}
        <input name="process" autoComplete="off" placeholder="P03" />
      </label>
      <label>
        {t("report.clause")}
        <input name="clause" autoComplete="off" placeholder="3.2.1" />
      </label>
      <label>
        {t("report.class")}
        <select name="class">
          <option value="">{t("report.class_any")}</option>
          <option value="major">{t("finding.class.major")}</option>
          <option value="minor">{t("finding.class.minor")}</option>
        </select>
      </label>
      <label>
        {t("report.owner")}
        <input name="owner" autoComplete="off" placeholder="ac.div2" />
      </label>
    </>
  );

  return (
    <ReportPage
      report="nc-ageing"
      title="report.ageing.title"
      what="report.ageing.what"
      legend="report.filters"
      reference={props.reference}
      dated
      busy={busy}
      outcome={outcome}
      fetchReport={fetchReport}
      fields={fields}
    >
      {report && (
        <section id="report" aria-labelledby="report-heading">
          <h3 id="report-heading">{t("report.as_held", { date: showDate(report.as_of), units: report.units.join(", ") })}</h3>
          <ReportActions download={download} print={print} />
          <div class="tiles">
            <Counts
              id="report-ages"
              caption={t("report.by_age")}
              rows={report.buckets.map((c) => [c.label, bucketWords(c.label), c.count])}
            />
            <Counts
              id="report-levels"
              caption={t("report.by_level")}
              rows={report.levels.map((c) => [c.label, levelWords(c.label), c.count])}
            />
          </div>
          <h3>{t("report.ncs", { count: report.ncs.length })}</h3>
          {report.ncs.length === 0 && <p class="muted">{t("report.none")}</p>}
          <ul class="items" id="report-ncs">
            {report.ncs.map((r) => (
              <li class="item" key={r.id} data-nc={r.id}>
                <p class="question">
                  <a href={`#/nc/${r.id}`}>{r.number ?? t("report.unnumbered")}</a> · {t(`nc.state.${r.state}` as Key)}
                </p>
                <p class="small">
                  {r.unit} · {r.process && `${t("audit.process", { process: r.process })} · `}
                  {t("audit.clause", { clause: r.clause })} · {t(`finding.class.${r.class}` as Key)}
                  {r.owner && ` · ${t("report.owned_by", { owner: r.owner })}`}
                </p>
                <p class="small">
                  {t("report.raised", { date: showDate(r.raised_on), days: n(r.age_days) })}
                  {r.due && ` · ${t("nc.due", { date: showDate(r.due) })}`}
                </p>
                {r.days_overdue !== null && (
                  <p class="overdue small">
                    {t("nc.overdue", { days: r.days_overdue })}
                    {r.escalation && ` · ${levelWords(r.escalation)}`}
                  </p>
                )}
              </li>
            ))}
          </ul>
          <h3>{t("report.devices")}</h3>
          <ul class="items" id="report-devices">
            {report.devices.map((d) => (
              <li class="item small" key={d.device}>
                {t("report.device", { user: d.username, device: d.device, at: shownInstant(d.last_synced) })}
              </li>
            ))}
          </ul>
        </section>
      )}
    </ReportPage>
  );
}

interface Held {
  id: number;
  doc_id: string;
  unit: string | null;
  username: string;
  device: string;
  received_at: string;
  rule: string;
  message: string;
  wrote: string[];
  more: number;
}

/**
 * The quarantine for people: every change the server refused in a unit
 * (and those below), newest first, with who sent it from which device and
 * when, the rule in the catalogue's words, and what it tried to write.
 */
export function Quarantine(props: { sync: Sync; reference: Reference }) {
  const { report, outcome, busy, fetchReport, download, print } = useServerReport<{
    as_of: string;
    units: string[];
    total: number;
    changes: Held[];
  }>(props.sync);

  return (
    <ReportPage
      report="quarantine"
      title="report.quarantine.title"
      what="report.quarantine.what"
      legend="report.quarantine.scope"
      reference={props.reference}
      dated={false}
      busy={busy}
      outcome={outcome}
      fetchReport={fetchReport}
    >
      {report && (
        <section id="report" aria-labelledby="report-heading">
          <h3 id="report-heading">
            {t("report.quarantine.count", { count: n(report.total), units: report.units.join(", ") })}
          </h3>
          <ReportActions download={download} print={print} />
          {report.changes.length === 0 && <p class="muted">{t("report.quarantine.none")}</p>}
          <ul class="items" id="report-held">
            {report.changes.map((h) => (
              <li class="item" key={h.id} data-held={h.id}>
                <p class="question">
                  {t("report.quarantine.who", { user: h.username, device: h.device, at: shownInstant(h.received_at) })}
                </p>
                <p class="error small">{ruleText(h.rule, h.message)}</p>
                <ul class="wrote small" aria-label={t("report.quarantine.wrote")}>
                  {h.wrote.map((line, i) => (
                    <li key={i}>{line}</li>
                  ))}
                  {h.more > 0 && <li>{t("report.quarantine.more", { count: h.more })}</li>}
                </ul>
              </li>
            ))}
          </ul>
        </section>
      )}
    </ReportPage>
  );
}

interface PlannedRow {
  id: string;
  number: string;
  unit: string;
  planned_from: string;
  planned_to: string;
  state: string;
  due: boolean;
  begun: boolean;
  reported: boolean;
  late: boolean;
}

interface UnitFigures {
  unit: string;
  programme_approved_on: string | null;
  planned: number;
  due: number;
  begun: number;
  reported: number;
  late: number;
  adherence_percent: number | null;
}

/** Programme adherence: the audits planned for the financial year against those begun and reported. */
export function Adherence(props: { sync: Sync; reference: Reference }) {
  const { report, outcome, busy, fetchReport, download, print } = useServerReport<{
    as_of: string;
    fy: string;
    figures: UnitFigures[];
    audits: PlannedRow[];
  }>(props.sync);

  return (
    <ReportPage
      report="programme-adherence"
      title="report.adherence.title"
      what="report.adherence.what"
      legend="report.quarantine.scope"
      reference={props.reference}
      dated
      busy={busy}
      outcome={outcome}
      fetchReport={fetchReport}
    >
      {report && (
        <section id="report" aria-labelledby="report-heading">
          <h3 id="report-heading">{t("report.adherence.as_of", { date: showDate(report.as_of), fy: report.fy })}</h3>
          <ReportActions download={download} print={print} />
          <ul class="items" id="report-units">
            {report.figures
              .filter((f) => f.planned > 0)
              .map((f) => (
                <li class="item" key={f.unit} data-unit={f.unit}>
                  <p class="question">
                    {f.unit} ·{" "}
                    {f.programme_approved_on
                      ? t("report.adherence.approved", { date: showDate(f.programme_approved_on) })
                      : t("report.adherence.not_approved")}
                  </p>
                  <p data-figures>
                    {t("report.adherence.figures", {
                      planned: n(f.planned),
                      due: n(f.due),
                      begun: n(f.begun),
                      reported: n(f.reported),
                    })}
                    {f.adherence_percent !== null && ` · ${t("report.adherence.percent", { percent: f.adherence_percent })}`}
                  </p>
                  {f.late > 0 && <p class="overdue">{t("report.adherence.late", { count: n(f.late) })}</p>}
                </li>
              ))}
          </ul>
          {report.figures.every((f) => f.planned === 0) && <p class="muted">{t("report.adherence.none")}</p>}
          <h3>{t("report.adherence.audits")}</h3>
          <ul class="items" id="report-audits">
            {report.audits.map((a) => (
              <li class="item small" key={a.id} data-audit={a.id}>
                <p class="question">
                  {a.number} · {a.unit}
                </p>
                <p>
                  {t("audits.dates", { from: showDate(a.planned_from), to: showDate(a.planned_to) })} ·{" "}
                  {t(`audit.state.${a.state}` as Key)}
                </p>
                {a.late && <p class="overdue">{t("report.adherence.late_one")}</p>}
              </li>
            ))}
          </ul>
        </section>
      )}
    </ReportPage>
  );
}
