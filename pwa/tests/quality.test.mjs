// What holds on every main screen (issue 16's scenarios f and g): switched
// to Hindi, no English string of the catalogue is left on the screen; an
// automated accessibility scan (axe-core) finds no serious or critical
// violation, in either language; and Chromium finds the app installable
// (manifest, icons, service worker).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { bothLanguages, en, env, open, signIn, status } from "./harness.mjs";

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
