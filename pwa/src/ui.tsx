// What every screen says after the user asked for something: done (a
// status a screen reader announces politely) or not (an alert), and the
// rules' refusals in the language shown.
import { useState } from "preact/hooks";
import { dateProblem, has, parseDate, showDate, t } from "./i18n";

/**
 * The outcome of an action, as shown under it: saved on the tablet (said in
 * the language shown at the time it is read), or refused with its text.
 */
export type Outcome = { ok: true } | { ok: false; text: string };

/** The edit is on the tablet's disk. */
export const saved: Outcome = { ok: true };

/**
 * What a rule means, in the language shown, with the rule's own words (which
 * name the case: the item, the state, the gap) after it.
 */
export function ruleText(rule: string, detail: string): string {
  const key = `rule.${rule}`;
  return has(key) ? `${t(key)} ${t("edit.detail", { detail })}` : detail;
}

/** A refusal of the rules, in the language shown (the rule's own words follow). */
export function refusal(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const m = /refused \(([a-z_.]+)\): (.*)/s.exec(text);
  return m ? t("edit.refused", { reason: ruleText(m[1], m[2]) }) : t("edit.failed", { reason: text });
}

/** The failure of an action: its text in an alert. */
export const failed = (text: string): Outcome => ({ ok: false, text });

export function OutcomeLine(props: { outcome?: Outcome; small?: boolean }) {
  const o = props.outcome;
  if (!o) return null;
  const size = props.small ? " small" : "";
  return (
    <p class={(o.ok ? "saved" : "error") + size} role={o.ok ? "status" : "alert"}>
      {o.ok && <span aria-hidden="true">✓ </span>}
      {o.ok ? t("item.saved") : o.text}
    </p>
  );
}

/** A new id for an item of a document (a finding, an action, a request): `prefix-` and 8 hex digits. */
export function itemId(prefix: string): string {
  const hex = [...crypto.getRandomValues(new Uint8Array(4))].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${prefix}-${hex}`;
}

/**
 * A form's submit handler: `save` makes the edit from the form's fields;
 * then the form is cleared and the outcome said (or the refusal, the fields kept).
 */
export function savingForm(save: (data: FormData) => Promise<void>, said: (o: Outcome) => void) {
  return async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    try {
      await save(new FormData(form));
      form.reset();
      said(saved);
    } catch (err) {
      said(failed(refusal(err)));
    }
  };
}

/**
 * A date field as users write dates, DD-MM-YYYY, in a text box with the
 * number pad (a browser's own date box shows the tablet's locale, often
 * MM/DD/YYYY). What it holds is checked as it is typed: a form will not
 * submit a date that is not on the calendar or out of `min`..`max` (ISO), and
 * the reason is shown under the field once the user leaves it. In a form the
 * field's value is the typed text: `parseDate` makes it ISO. Given `value`,
 * the field shows it and reports each change through `onText`.
 */
export function DateField(props: {
  label: string;
  name?: string;
  value?: string;
  /** The text a form's field starts with (given no `value`). */
  defaultValue?: string;
  min?: string;
  max?: string;
  required?: boolean;
  describedBy?: string;
  onText?: (text: string) => void;
}) {
  const [problem, setProblem] = useState<string>();
  const [errorId] = useState(() => itemId("date-error"));
  const check = (el: HTMLInputElement, show: boolean) => {
    const p = dateProblem(el.value, props.min, props.max);
    el.setCustomValidity(p ?? "");
    if (show || !p) setProblem(p);
  };
  return (
    <>
      <label>
        {props.label}
        <input
          type="text"
          inputMode="numeric"
          autoComplete="off"
          maxLength={10}
          placeholder={t("date.placeholder")}
          name={props.name}
          value={props.value}
          defaultValue={props.defaultValue}
          required={props.required}
          aria-invalid={problem ? true : undefined}
          aria-describedby={[props.describedBy, problem && errorId].filter(Boolean).join(" ") || undefined}
          onInput={(e) => {
            check(e.currentTarget, false);
            props.onText?.(e.currentTarget.value);
          }}
          onBlur={(e) => {
            const el = e.currentTarget;
            // 15032026 reads back as 15-03-2026 once the user moves on.
            const iso = parseDate(el.value);
            if (iso && showDate(iso) !== el.value) {
              el.value = showDate(iso);
              props.onText?.(el.value);
            }
            check(el, true);
          }}
          onInvalid={(e) => check(e.currentTarget, true)}
        />
      </label>
      {problem && (
        <p class="error small" id={errorId}>
          {problem}
        </p>
      )}
    </>
  );
}

/** The ISO date of a form's date field (a `DateField`), or an error that says how to write it. */
export function formDate(data: FormData, name: string): string {
  const iso = parseDate(String(data.get(name) ?? ""));
  if (!iso) throw new Error(t("date.format"));
  return iso;
}
