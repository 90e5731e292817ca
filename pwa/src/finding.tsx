// The finding form, opened from any checklist item: classification, clause,
// process, and what was found (the requirement and the objective evidence).
// A major or minor finding raises its NC at once, as a new document with a
// provisional number until the server gives it one.
import { useState } from "preact/hooks";
import { new_document_id } from "../generated/sync-wasm/sync_wasm.js";
import type { AuditView } from "./audit";
import { AddFile, Files } from "./evidence";
import type { Evidence } from "./files";
import { type Key, t, today } from "./i18n";
import type { TemplateItem } from "./store";
import type { Sync } from "./sync";
import { type Outcome, OutcomeLine, failed, itemId, refusal } from "./ui";

const CLASSES = ["major", "minor", "observation", "ofi", "good_practice"];

/** The next provisional number of this user's NCs on this tablet: D-IYER-01, D-IYER-02 ... */
export function nextProvisional(sync: Sync): string {
  const user = sync.device.user();
  const prefix = `D-${(user.split(".").pop() ?? user).toUpperCase().replace(/[^A-Z0-9]/g, "")}-`;
  let most = 0;
  for (const id of sync.device.documents()) {
    try {
      const nc = JSON.parse(sync.device.nc_view(id, today()));
      if (typeof nc.provisional === "string" && nc.provisional.startsWith(prefix)) {
        most = Math.max(most, Number(nc.provisional.slice(prefix.length)) || 0);
      }
    } catch {
      // Not an NC.
    }
  }
  return `${prefix}${String(most + 1).padStart(2, "0")}`;
}

export function FindingForm(props: { sync: Sync; view: AuditView; rkey: string; item?: TemplateItem }) {
  const { sync, view, rkey, item } = props;
  const process = rkey.split("@")[1] ?? null;
  const [cls, setCls] = useState("minor");
  const [text, setText] = useState("");
  const [raiseNc, setRaiseNc] = useState(true);
  // Each photo is on the tablet's disk as soon as it is taken.
  const [files, setFiles] = useState<Evidence[]>([]);
  const [error, setError] = useState<Outcome>();
  const [busy, setBusy] = useState(false);
  const clause = item?.clause ?? "";
  const createsNc = cls === "major" || cls === "minor";

  async function submit(e: Event) {
    e.preventDefault();
    if (!text.trim()) {
      setError(failed(t("finding.text_needed")));
      return;
    }
    setBusy(true);
    setError(undefined);
    const fid = itemId("f");
    try {
      await sync.edit(view.id, {
        edit: "put_finding",
        id: fid,
        class: cls,
        clause,
        process,
        text,
        evidence: files,
      });
      if (createsNc && raiseNc) {
        const nc = new_document_id(Date.now(), crypto.getRandomValues(new Uint8Array(10)));
        await sync.edit(nc, {
          edit: "create_nc",
          unit: view.header.unit,
          audit: view.id,
          finding: fid,
          process,
          clause,
          class: cls,
          raised_on: today(),
          description: text,
          provisional: nextProvisional(sync),
        });
      }
      location.hash = `#/audit/${view.id}`;
    } catch (err) {
      setError(failed(refusal(err)));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="panel">
      <a class="back" href={`#/audit/${view.id}`}>
        ← {t("finding.back", { number: view.header.number })}
      </a>
      <h2>{t("finding.new")}</h2>
      <p class="question">{item?.question ?? rkey}</p>
      <form onSubmit={submit} class="wide">
        <fieldset>
          <legend>{t("finding.class")}</legend>
          <div class="choices">
            {CLASSES.map((c) => (
              <label class="radio" key={c}>
                <input type="radio" name="class" value={c} checked={cls === c} onChange={() => setCls(c)} />
                {t(`finding.class.${c}` as Key)}
              </label>
            ))}
          </div>
        </fieldset>
        <p>
          {clause && t("audit.clause", { clause })}
          {process && ` · ${t("audit.process", { process })}`}
        </p>
        <label>
          {t("finding.text")}
          <textarea rows={5} value={text} onInput={(e) => setText(e.currentTarget.value)} required />
        </label>
        <Files sync={sync} files={files} />
        <AddFile sync={sync} attach={async (e) => setFiles((now) => [...now, e])} />
        {createsNc && (
          <label class="radio">
            <input type="checkbox" checked={raiseNc} onChange={(e) => setRaiseNc(e.currentTarget.checked)} />
            {t("finding.raise_nc")}
          </label>
        )}
        <OutcomeLine outcome={error} />
        <button type="submit" disabled={busy}>
          {t("finding.submit")}
        </button>
      </form>
    </main>
  );
}
