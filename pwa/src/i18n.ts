// Every string the screens show comes from a catalogue: English and Hindi,
// switchable at any time and remembered on the tablet.
import { signal } from "./signal";
import en from "./i18n/en.json";
import hi from "./i18n/hi.json";

export type Lang = "en" | "hi";
export type Key = keyof typeof en;

const catalogues: Record<Lang, Record<Key, string>> = { en, hi };
const STORED = "sqm.lang";

function initial(): Lang {
  return localStorage.getItem(STORED) === "hi" ? "hi" : "en";
}

export const lang = signal<Lang>(initial());

export function setLang(l: Lang): void {
  localStorage.setItem(STORED, l);
  document.documentElement.lang = l;
  lang.set(l);
}

/** Whether the catalogues hold `key` (for keys made from data, such as a rule's code). */
export function has(key: string): key is Key {
  return key in catalogues.en;
}

/** The text of `key` in the language shown, with `{name}` filled from `args`. */
export function t(key: Key, args: Record<string, string | number> = {}): string {
  const text = catalogues[lang.get()][key] ?? catalogues.en[key];
  return text.replace(/\{(\w+)\}/g, (_, name: string) => String(args[name] ?? `{${name}}`));
}

/** An ISO date (2026-01-15, or a timestamp) as users read it: 15-01-2026. */
export function showDate(iso: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(iso);
  return m ? `${m[3]}-${m[2]}-${m[1]}` : iso;
}

/**
 * A date as users write it, DD-MM-YYYY, as ISO 8601 (15-01-2026 is
 * 2026-01-15); undefined if it is not a day of the calendar. The separator
 * may be a dash, a slash, a dot or a space, or none at all (15012026: a
 * tablet's number pad has no dash); an ISO date pasted in is taken as it is.
 */
export function parseDate(text: string): string | undefined {
  const s = text.trim();
  const m = /^(\d{1,2})[-/. ](\d{1,2})[-/. ](\d{4})$/.exec(s) ?? /^(\d{2})(\d{2})(\d{4})$/.exec(s);
  const iso = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  const [y, mo, d] = m ? [+m[3], +m[2], +m[1]] : iso ? [+iso[1], +iso[2], +iso[3]] : [0, 0, 0];
  if (y < 1900 || y > 2999) return undefined;
  const day = new Date(Date.UTC(y, mo - 1, d));
  // 31-02 rolls over to March: a day that is not on the calendar does not round-trip.
  if (day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d) return undefined;
  return day.toISOString().slice(0, 10);
}

/**
 * What is wrong with a typed date, in the language shown, or undefined if
 * nothing is (an empty field is for `required` to judge). `min` and `max` are ISO.
 */
export function dateProblem(text: string, min?: string, max?: string): string | undefined {
  if (!text.trim()) return undefined;
  const iso = parseDate(text);
  if (!iso) return t(/^\s*\d{1,2}[-/. ]?\d{1,2}[-/. ]?\d{4}\s*$/.test(text) ? "date.no_such_day" : "date.format");
  if (min && iso < min) return t("date.before", { date: showDate(min) });
  if (max && iso > max) return t("date.after", { date: showDate(max) });
  return undefined;
}

/** Today on the tablet's calendar, ISO 8601 (2026-01-15). */
export function today(): string {
  const d = new Date();
  const two = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
}
