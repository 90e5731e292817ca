// A cold start draws the audit from the screen kept with its document in
// IndexedDB, before the wasm build of sync-core is ready (issue 16, part 7:
// the checklist opens fast); an answer tapped in that moment waits for the
// device and is kept, never dropped. The wasm is held back by the test
// (WebAssembly's instantiation waits until the test releases it), so the
// moment is as long as the test needs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { answer, base, beginAndStart, en, open, planAudit, screenKept, signIn } from "./harness.mjs";

/** Holds every WebAssembly instantiation in the page until `window.releaseWasm()`. */
function holdWasm() {
  const released = new Promise((resolve) => {
    window.releaseWasm = resolve;
  });
  for (const name of ["instantiateStreaming", "instantiate"]) {
    const real = WebAssembly[name];
    WebAssembly[name] = async (...args) => {
      await released;
      return real.apply(WebAssembly, args);
    };
  }
}

const marked = (page, name) => page.evaluate((n) => performance.getEntriesByName(n).length > 0, `sqm:${name}`);

test("a cold start shows the audit kept on the tablet before the wasm is ready, and a tap then is kept", async () => {
  const number = "IA/DEMO-I/2025-26/008";
  const planned = await planAudit(number);
  const { context, page, errors } = await open();
  await signIn(page, "k.iyer");
  await beginAndStart(page, number);
  await answer(page, "sd.timeliness@P03", en["answer.partly"]);
  await screenKept(page, "k.iyer", planned.id, 1);
  await context.setOffline(true);
  await page.close();

  const cold = await context.newPage();
  cold.on("pageerror", (e) => errors.push(String(e)));
  await cold.addInitScript(holdWasm);
  await cold.goto(`${base}/#/audit/${planned.id}`);
  // Drawn from the snapshot: the answer given before, and the lead's moves, with no device yet.
  await cold.getByRole("heading", { name: number }).waitFor();
  const kept = cold.locator('li.item[data-key="sd.timeliness@P03"]');
  assert.equal(await kept.getByRole("button", { name: en["answer.partly"], exact: true }).getAttribute("aria-pressed"), "true");
  assert.ok(await cold.getByRole("button", { name: en["move.submit_for_review"] }).isVisible());
  assert.equal(await marked(cold, "wasm-ready"), false, "the wasm is still held");
  assert.equal(await marked(cold, "checklist-live"), false);
  assert.equal(await cold.locator("footer").count(), 0, "the core's version shows once it is loaded");

  // A tap now waits for the device, then is on the tablet's disk.
  const other = cold.locator('li.item[data-key="sd.timeliness@P04"]');
  await other.getByRole("button", { name: en["answer.not_conform"], exact: true }).click();
  await cold.waitForTimeout(300);
  assert.equal(await other.getByRole("status").count(), 0, "not said to be saved before it is");
  await cold.evaluate(() => window.releaseWasm());
  await other.getByRole("status").filter({ hasText: en["item.saved"] }).waitFor();
  await cold.waitForFunction(() => performance.getEntriesByName("sqm:checklist-live").length > 0);
  assert.equal(await cold.locator("footer").count(), 1);
  await cold.close();

  // Again cold, the wasm not held: both answers are there, live.
  const again = await context.newPage();
  await again.goto(`${base}/#/audit/${planned.id}`);
  await again.waitForFunction(() => performance.getEntriesByName("sqm:checklist-live").length > 0);
  for (const [key, words] of [["sd.timeliness@P03", en["answer.partly"]], ["sd.timeliness@P04", en["answer.not_conform"]]]) {
    const item = again.locator(`li.item[data-key="${key}"]`);
    assert.equal(await item.getByRole("button", { name: words, exact: true }).getAttribute("aria-pressed"), "true", key);
  }
  assert.deepEqual(errors, [], "no script error on the page");
  await context.close();
});
