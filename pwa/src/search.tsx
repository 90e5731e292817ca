// Search on the tablet, with or without network: by the server's number
// (NC-07, IA/DEMO-I/2025-26/003), the tablet's provisional number
// (D-IYER-01), or any word of what was written (a finding, an NC's
// description, correction, root cause or actions, an answer's note), over
// every document the tablet holds.
import { useState } from "preact/hooks";
import { type AuditView, readAudit } from "./audit";
import { type Key, t } from "./i18n";
import { type NcView, heldNcs, ncName } from "./nc";
import type { Sync } from "./sync";

interface Hit {
  href: string;
  title: string;
  /** Where the words were found, in the language shown. */
  where: string;
  /** A piece of the text found, around the words. */
  text: string;
}

const fold = (s: string) => s.toLocaleLowerCase("en-IN").normalize("NFC");

/** A short piece of `text` around the first place every word of `words` is, or undefined. */
function match(text: string, words: string[]): string | undefined {
  const f = fold(text);
  if (!words.every((w) => f.includes(w))) return undefined;
  const at = Math.max(0, f.indexOf(words[0]) - 40);
  return (at > 0 ? "…" : "") + text.slice(at, at + 140) + (text.length > at + 140 ? "…" : "");
}

function searchNc(nc: NcView, words: string[]): Hit | undefined {
  const fields: [Key, string][] = [
    ["search.number", `${nc.number ?? ""} ${nc.provisional}`],
    ["nc.description", nc.description],
    ["nc.correction", nc.correction],
    ["nc.root_cause", nc.root_cause],
    ...Object.values(nc.actions).map((a): [Key, string] => ["nc.actions", `${a.text} ${a.owner}`]),
  ];
  for (const [where, text] of fields) {
    const piece = match(text, words);
    if (piece) return { href: `#/nc/${nc.id}`, title: ncName(nc), where: t(where), text: piece };
  }
  return undefined;
}

function searchAudit(a: AuditView, words: string[]): Hit[] {
  const hits: Hit[] = [];
  const href = `#/audit/${a.id}`;
  const number = match(a.header.number, words);
  if (number) hits.push({ href, title: a.header.number, where: t("search.number"), text: number });
  for (const f of Object.values(a.findings)) {
    const piece = match(f.text, words);
    if (piece) hits.push({ href, title: a.header.number, where: t("finding.heading"), text: piece });
  }
  for (const [key, r] of Object.entries(a.responses)) {
    const piece = match(r.note, words);
    if (piece) hits.push({ href, title: `${a.header.number} · ${key}`, where: t("item.note"), text: piece });
  }
  return hits;
}

/** Every hit of `query` among the documents the tablet holds (every word must be found). */
export function search(sync: Sync, query: string): Hit[] {
  const words = fold(query).split(/\s+/).filter(Boolean);
  if (words.length === 0) return [];
  const hits: Hit[] = [];
  for (const nc of heldNcs(sync)) {
    const hit = searchNc(nc, words);
    if (hit) hits.push(hit);
  }
  for (const id of sync.device.documents()) {
    const a = readAudit(sync, id);
    if (a) hits.push(...searchAudit(a, words));
  }
  return hits;
}

export function Search(props: { sync: Sync }) {
  const [query, setQuery] = useState("");
  const hits = query.trim() ? search(props.sync, query) : [];
  return (
    <section class="search" role="search" aria-labelledby="search-heading">
      <h2 id="search-heading" class="visually-hidden">
        {t("search.heading")}
      </h2>
      <label>
        {t("search.label")}
        <input type="search" value={query} placeholder="NC-07, D-IYER-01, …" onInput={(e) => setQuery(e.currentTarget.value)} />
      </label>
      {query.trim() && (
        <p class="muted small" role="status">
          {t("search.count", { count: hits.length })}
        </p>
      )}
      {hits.length > 0 && (
        <ul class="items" id="search-hits">
          {hits.slice(0, 50).map((h, i) => (
            <li class="item" key={`${h.href}-${i}`}>
              <a href={h.href}>{h.title}</a> · <span class="muted small">{h.where}</span>
              <p class="note small">{h.text}</p>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
