// What holds on every main screen (issue 16's scenarios f and g): switched
// to Hindi, no English string of the catalogue is left on the screen; an
// automated accessibility scan (axe-core) finds no serious or critical
// violation, in either language; and Chromium finds the app installable
// (manifest, icons, service worker).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { en, env, hi, open, signIn, status } from "./harness.mjs";

// Evaluated through the debugging protocol: the app's CSP rightly refuses inline scripts.
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/**
 * Catalogue strings that would show an English leftover: those that differ in
 * Hindi, cut at their placeholders, keeping the parts long enough to be telling.
 */
const english = [
  ...new Set(
    Object.entries(en)
      .filter(([k, v]) => hi[k] !== v)
      .flatMap(([, v]) => v.split(/\{\w+\}/))
      .map((part) => part.trim())
      .filter((part) => part.length >= 8),
  ),
];

/** The serious and critical violations axe-core finds on the page as it is. */
async function violations(page) {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource);
  const found = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
  return found;
}

/** Checks the screen in English, switches to Hindi, and checks it again. */
async function bothLanguages(page, name, ready) {
  await ready(en);
  assert.deepEqual(await violations(page), [], `${name} in English`);
  await page.getByRole("button", { name: en["lang.switch_label"] }).click();
  await ready(hi);
  const text = await page.evaluate(() => document.body.innerText);
  const left = english.filter((s) => text.includes(s));
  assert.deepEqual(left, [], `${name}: English left on the Hindi screen`);
  assert.deepEqual(await violations(page), [], `${name} in Hindi`);
  await page.getByRole("button", { name: hi["lang.switch_label"] }).click();
  await ready(en);
}

test("the four main screens change wholly to Hindi and pass an accessibility scan in both languages", async () => {
  const auditor = await open();
  const { page } = auditor;
  await signIn(page, "k.iyer");
  await status(page).filter({ hasText: en["state.saved_server"] }).waitFor({ timeout: 20_000 });

  await bothLanguages(page, "my audits", (w) => page.getByRole("heading", { name: w["audits.heading"] }).waitFor());

  await page.locator("li.card", { hasText: "IA/DEMO-I/2025-26/003" }).getByRole("link").click();
  await bothLanguages(page, "the checklist", (w) =>
    page.getByRole("group", { name: w["audit.contested"] }).first().waitFor(),
  );

  await page.goBack();
  await page.locator("li.card[data-nc]").first().getByRole("link").click();
  await bothLanguages(page, "an NC", (w) => page.getByRole("heading", { name: w["nc.history"] }).waitFor());

  const nodal = await open({ width: 800, height: 1280 });
  await signIn(nodal.page, "a.rao");
  await bothLanguages(nodal.page, "the dashboard", (w) =>
    nodal.page.getByRole("heading", { name: w["dash.heading"] }).waitFor(),
  );
  assert.deepEqual([...auditor.errors, ...nodal.errors], [], "no script error on the pages");
  await auditor.context.close();
  await nodal.context.close();
});

test("Chromium finds the app installable: its manifest, icon and service worker", async () => {
  // A profile on disk: Chromium never offers to install from an incognito context.
  const profile = mkdtempSync(path.join(tmpdir(), "sqm-profile-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: env("SQM_CHROMIUM"),
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  await signIn(page, "s.khan");
  await page.evaluate(() => navigator.serviceWorker.ready);
  const cdp = await context.newCDPSession(page);
  const { installabilityErrors } = await cdp.send("Page.getInstallabilityErrors");
  assert.deepEqual(installabilityErrors, []);
  const manifest = await cdp.send("Page.getAppManifest");
  const parsed = JSON.parse(manifest.data);
  assert.equal(parsed.display, "standalone");
  assert.equal(parsed.start_url, "/");
  await context.close();
  rmSync(profile, { recursive: true, force: true });
});
