// What the server refused: each refusal with its document, rule and reason,
// as the tablet kept it, and an export of all of them with the documents
// that hold the refused changes (nothing refused is ever dropped).
import { useEffect, useState } from "preact/hooks";
import { showDate, t } from "./i18n";
import type { RefusedChange } from "./store";
import type { Sync } from "./sync";
import { ruleText } from "./ui";

function base64(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}

/** One JSON file: the refusals and the saved documents that hold their changes. */
function exportFile(sync: Sync, all: RefusedChange[]): string {
  const docs: Record<string, string> = {};
  for (const r of all) {
    if (!docs[r.doc] && sync.device.documents().includes(r.doc)) docs[r.doc] = base64(sync.device.save(r.doc));
  }
  return JSON.stringify({ user: sync.device.user(), exported_at: new Date().toISOString(), refused: all, documents: docs }, null, 2);
}

export function Refusals(props: { sync: Sync }) {
  const [all, setAll] = useState(props.sync.refused.get());
  useEffect(() => props.sync.refused.follow(setAll), [props.sync]);
  const [href, setHref] = useState<string>();
  useEffect(() => {
    const url = URL.createObjectURL(new Blob([exportFile(props.sync, all)], { type: "application/json" }));
    setHref(url);
    return () => URL.revokeObjectURL(url);
  }, [all]);
  return (
    <main class="panel">
      <a class="back" href="#/">
        ← {t("audit.back")}
      </a>
      <h2>{t("refused.heading")}</h2>
      <p>{t("refused.help")}</p>
      {all.length === 0 && <p class="muted">{t("refused.none")}</p>}
      <ul class="items">
        {all.map((r) => (
          <li class="item" key={r.key} data-rule={r.rule}>
            <p class="question">{t("refused.reason", { reason: ruleText(r.rule, r.message) })}</p>
            <p class="muted small">
              {t("refused.when", { date: showDate(r.at), count: r.changes.length })} · {r.rule}
            </p>
          </li>
        ))}
      </ul>
      {all.length > 0 && (
        <p class="actions">
          <a class="button" href={href} download={`refused-${props.sync.device.user()}.json`}>
            {t("refused.export")}
          </a>
          {all.some((r) => !r.seen) && (
            <button type="button" onClick={() => props.sync.seen()}>
              {t("refused.seen")}
            </button>
          )}
        </p>
      )}
    </main>
  );
}
