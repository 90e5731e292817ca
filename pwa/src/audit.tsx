// An audit as the auditor opens it: its checklist grouped by clause, each
// item's answer with who gave it, and the answers given at the same time
// on two tablets shown side by side until the lead settles them. The
// audit, its rules and its gaps are read through the wasm build.
import { type Key, showDate, t } from "./i18n";
import type { Reference, TemplateItem } from "./store";
import type { Sync } from "./sync";

interface Answer {
  cpna?: string;
  yn?: string;
  text?: string;
  number?: number;
  date?: string;
}

interface Response {
  answer: Answer | "photo";
  note: string;
  evidence: unknown[];
  by: string;
  at: string;
}

interface AuditView {
  state: string;
  responses: Record<string, Response>;
  contested_responses: Record<string, Response[]>;
  gaps: { key: string; kind: string }[] | null;
}

interface Rule {
  answer: string;
  evidence: boolean;
  required: "always" | "optional" | { when: unknown };
}

/** An answer in the words of the language shown. */
function words(a: Answer | "photo"): string {
  if (a === "photo") return t("answer.photo");
  if (a.cpna) return t(`answer.${a.cpna}` as Key);
  if (a.yn) return t(`answer.${a.yn === "na" ? "na" : a.yn}` as Key);
  if (a.date) return showDate(a.date);
  if (a.number !== undefined) return a.number.toLocaleString("en-IN");
  return a.text ?? "";
}

function Given(props: { r: Response }) {
  return (
    <>
      <p class="answer">{words(props.r.answer)}</p>
      {props.r.note && <p class="note">{props.r.note}</p>}
      <p class="muted small">
        {t("audit.by", { user: props.r.by, date: showDate(props.r.at) })}
        {props.r.evidence.length > 0 && ` · ${t("audit.files", { count: props.r.evidence.length })}`}
      </p>
    </>
  );
}

function Item(props: { rkey: string; rule: Rule; question: string; view: AuditView }) {
  const { rkey, rule, view } = props;
  const given = view.responses[rkey];
  const contest = view.contested_responses[rkey];
  const process = rkey.split("@")[1];
  return (
    <li class={contest ? "item contested" : "item"} data-key={rkey}>
      <p class="question">
        {props.question}
        {process && <span class="tag">{t("audit.process", { process })}</span>}
        {rule.required === "always" && <span class="tag">{t("audit.required")}</span>}
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
                <Given r={r} />
              </div>
            ))}
          </div>
          <p class="muted small">{t("audit.contested_help")}</p>
        </div>
      ) : given ? (
        <Given r={given} />
      ) : (
        <p class="muted">{t("audit.unanswered")}</p>
      )}
    </li>
  );
}

/** Template items by key, for the audit's pinned version. */
function itemsOf(reference: Reference, version: number): Map<string, TemplateItem> {
  const template = reference.templates.find((tp) => tp.version === version);
  return new Map((template?.items ?? []).map((i) => [i.key, i]));
}

export function AuditScreen(props: { id: string; reference: Reference; sync?: Sync }) {
  const planned = props.reference.audits.find((a) => a.id === props.id);
  const plan = props.reference.author.planned?.[props.id];
  let view: AuditView | undefined;
  try {
    if (props.sync?.device.documents().includes(props.id)) {
      view = JSON.parse(props.sync.device.audit_view(props.id));
    }
  } catch {
    view = undefined;
  }
  const back = (
    <a class="back" href="#/">
      ← {t("audit.back")}
    </a>
  );
  if (!planned || !plan || !view) {
    return (
      <main class="panel">
        {back}
        <p>{t(view ? "audit.no_checklist" : "audit.not_here")}</p>
      </main>
    );
  }
  const template = itemsOf(props.reference, plan.checklist.version);
  const groups = new Map<string, [string, Rule, TemplateItem | undefined][]>();
  for (const [rkey, rule] of Object.entries(plan.checklist.items as Record<string, Rule>)) {
    const item = template.get(rkey.split("@")[0]);
    const clause = item?.clause ?? "";
    if (!groups.has(clause)) groups.set(clause, []);
    groups.get(clause)!.push([rkey, rule, item]);
  }
  const clauses = [...groups.keys()].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  const v = view;
  return (
    <main class="panel">
      {back}
      <h2>{planned.number}</h2>
      <p>
        <span class="audit-state">{t(`audit.state.${v.state}` as Key)}</span>
      </p>
      {v.gaps && v.gaps.length > 0 && <p class="muted">{t("audit.gaps", { count: v.gaps.length })}</p>}
      {clauses.map((clause) => (
        <section class="clause" key={clause}>
          <h3>{clause ? t("audit.clause", { clause }) : t("audit.general")}</h3>
          <ul class="items">
            {groups.get(clause)!.map(([rkey, rule, item]) => (
              <Item key={rkey} rkey={rkey} rule={rule} question={item?.question ?? rkey} view={v} />
            ))}
          </ul>
        </section>
      ))}
    </main>
  );
}
