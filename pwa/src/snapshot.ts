// An audit's screen as the device sees it, kept in IndexedDB shortly after
// the document is (off the path of a tap), read on a cold start so the
// checklist is drawn before the wasm build has compiled. Only drawn until
// the live view replaces it; every edit still goes through the device.
import type { Device } from "../generated/sync-wasm/sync_wasm.js";
import { today } from "./i18n";
import type { Snapshot } from "./store";

/** The shape of a kept screen this version of the app draws. */
export const FORMAT = 1;

/** The lead's moves of an audit, in the order they come. */
export const MOVES = ["start", "submit_for_review", "return_for_edit", "issue_report", "accept_late_edits"] as const;

export interface MayEdit {
  ok: boolean;
  rule?: string;
  message?: string;
}

/** May the signed-in user change the checklist's answers today? */
export function mayAnswer(device: Device, id: string): MayEdit {
  return JSON.parse(device.may_edit(id, '{"field":"audit_content"}', today()));
}

/** The moves the rules allow the user now (those waiting only on the checklist are offered, to say why). */
export function movesAllowed(device: Device, id: string): string[] {
  return MOVES.filter((mv) => {
    const may: MayEdit = JSON.parse(device.may_edit(id, JSON.stringify({ move: mv }), today()));
    return may.ok || may.rule === "audit.checklist";
  });
}

/** The audit's screen now, or nothing if the document is not an audit the device can read. */
export function snapshotOf(device: Device, user: string, id: string): Snapshot | undefined {
  try {
    const view = device.audit_view(id);
    return { key: `${user}/${id}`, format: FORMAT, view, may: mayAnswer(device, id), moves: movesAllowed(device, id) };
  } catch {
    return undefined;
  }
}
