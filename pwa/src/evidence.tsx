// Photos and scans on the screens: a button that takes a photo (the
// tablet's camera, or a file) and keeps it on the tablet before the edit
// that refers to it, and the files an item, a finding or an NC carries.
import { useEffect, useState } from "preact/hooks";
import { type Evidence, FileRefused } from "./files";
import { t } from "./i18n";
import type { Sync } from "./sync";
import { type Outcome, OutcomeLine, failed, refusal } from "./ui";

/** A camera or a page, drawn (the tablet may have no emoji font). */
function Icon(props: { kind: "camera" | "file" }) {
  return (
    <svg class="icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
      {props.kind === "camera" ? (
        <path
          fill="currentColor"
          d="M9 4 7.2 6H4a2 2 0 0 0-2 2v10a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2V8a2 2 0 0 0-2-2h-3.2L15 4H9zm3 5a4 4 0 1 1 0 8 4 4 0 0 1 0-8zm0 2a2 2 0 1 0 0 4 2 2 0 0 0 0-4z"
        />
      ) : (
        <path fill="currentColor" d="M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm7 1.5V9h5.5L13 3.5zM8 13v2h8v-2H8zm0 4v2h6v-2H8z" />
      )}
    </svg>
  );
}

/**
 * "Add a photo": the file input opens the camera on a tablet. The file is
 * kept on the tablet, then `attach` makes the edit that refers to it.
 */
export function AddFile(props: {
  /** Absent until the device is ready (the button waits, disabled). */
  sync?: Sync;
  attach: (e: Evidence) => Promise<void>;
  label?: string;
  pdf?: boolean;
  disabled?: boolean;
}) {
  const [busy, setBusy] = useState(false);
  const [status, setStatus] = useState<Outcome>();
  async function chosen(input: HTMLInputElement) {
    const files = [...(input.files ?? [])];
    input.value = "";
    if (files.length === 0) return;
    setBusy(true);
    setStatus(undefined);
    try {
      const sync = props.sync;
      if (!sync) return;
      for (const f of files) await props.attach(await sync.keepFile(f, props.pdf));
      setStatus({ ok: true });
    } catch (e) {
      setStatus(failed(e instanceof FileRefused ? e.message : refusal(e)));
    } finally {
      setBusy(false);
    }
  }
  const off = props.disabled || busy || !props.sync;
  return (
    <div class="add-file">
      <label class={off ? "button disabled" : "button"}>
        <Icon kind="camera" />
        {busy ? t("file.keeping") : (props.label ?? t("file.add_photo"))}
        <input
          type="file"
          class="visually-hidden"
          accept={props.pdf ? "image/*,application/pdf" : "image/*"}
          capture={props.pdf ? undefined : "environment"}
          disabled={off}
          onChange={(e) => chosen(e.currentTarget)}
        />
      </label>
      <OutcomeLine outcome={status} small />
    </div>
  );
}

/** One file: a thumbnail for a photo, a link for a PDF, its name when the tablet cannot show it. */
function Thumb(props: { sync?: Sync; file: Evidence }) {
  const { file } = props;
  const [url, setUrl] = useState<string>();
  useEffect(() => {
    let live = true;
    let made: string | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    // The file may reach the server after the document that names it: ask again until it is there.
    const sync = props.sync;
    if (!sync) return;
    const look = () =>
      sync.uploads.content(file).then((b) => {
        if (!live) return;
        if (!b) {
          timer = setTimeout(look, 3000);
          return;
        }
        made = URL.createObjectURL(b);
        setUrl(made);
      });
    void look();
    return () => {
      live = false;
      clearTimeout(timer);
      if (made) URL.revokeObjectURL(made);
    };
  }, [file.sha256, props.sync]);
  if (!url) return <li class="file muted small">{t("file.not_here", { name: file.name })}</li>;
  return (
    <li class="file" data-sha256={file.sha256}>
      <a href={url} target="_blank" rel="noopener" download={file.mime.startsWith("image/") ? undefined : file.name}>
        {file.mime.startsWith("image/") ? <img src={url} alt={file.name} loading="lazy" /> : <span class="doc">
            <Icon kind="file" />
            {file.name}
          </span>}
      </a>
    </li>
  );
}

export function Files(props: { sync?: Sync; files: Evidence[] }) {
  if (props.files.length === 0) return null;
  return (
    <ul class="files" aria-label={t("file.list", { count: props.files.length })}>
      {props.files.map((f) => (
        <Thumb key={f.sha256} sync={props.sync} file={f} />
      ))}
    </ul>
  );
}
