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

/** Today on the tablet's calendar, ISO 8601 (2026-01-15). */
export function today(): string {
  const d = new Date();
  const two = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
}
