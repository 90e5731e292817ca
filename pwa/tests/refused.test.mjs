// A tampered client (issue 16's scenario e): the page's own JavaScript
// rewrites the rights kept on the tablet so that an auditor may write a
// process owner's correction. The tablet then lets the edit through, but
// the server checks every change against the author's real role: it refuses
// the change, the tablet shows it as refused with the rule and keeps it,
// and the server's NC is unchanged.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { bothLanguages, en, open, shots, signIn, sql, status } from "./harness.mjs";

test("a forbidden edit forced through the page's JavaScript is refused by the server and shown as refused, with nothing lost", async () => {
  const { context, page, errors } = await open();
  await signIn(page, "s.khan");
  const card = page.locator("li.card[data-nc]", { hasText: "NC-07" });
  await card.waitFor({ timeout: 20_000 });
  await status(page).filter({ hasText: en["state.saved_server"] }).waitFor({ timeout: 20_000 });
  const ncId = await card.getAttribute("data-nc");
  const before = sql(`SELECT COUNT(*) FROM quarantine WHERE doc_id = '${ncId}'`);

  // The tampering: s.khan, an auditor, makes herself process owner of P02 in the tablet's store.
  await context.setOffline(true);
  await page.evaluate(
    () =>
      new Promise((done, fail) => {
        const req = indexedDB.open("sqm-field-audit");
        req.onerror = () => fail(req.error);
        req.onsuccess = () => {
          const tx = req.result.transaction("reference", "readwrite");
          const store = tx.objectStore("reference");
          const get = store.get("current");
          get.onsuccess = () => {
            const kept = get.result;
            kept.value.author.grants.push({ unit: "DEMO-I", role: "process_owner", from: "2025-04-01", until: null });
            kept.value.author.processes = [...(kept.value.author.processes ?? []), ["DEMO-I", "P02"]];
            store.put(kept, "current");
          };
          tx.oncomplete = () => done();
          tx.onerror = () => fail(tx.error);
        };
      }),
  );
  await page.reload();
  await card.getByRole("link").click();
  const correction = "Tampered: the register was corrected (written by an auditor).";
  await page.getByLabel(en["nc.correction"]).fill(correction);
  await page.getByRole("button", { name: en["nc.save"].replace("{what}", en["nc.correction"]) }).click();
  await page.locator("main p.saved").filter({ hasText: en["item.saved"] }).waitFor();

  // Online: the server refuses it, and the bar says so and leads to the reason.
  await context.setOffline(false);
  await status(page).filter({ hasText: en["state.refused"] }).waitFor({ timeout: 20_000 });
  await status(page).getByRole("link").click();
  const refusal = page.locator("li[data-rule]").first();
  await refusal.waitFor();
  assert.equal(await refusal.getAttribute("data-rule"), "nc.owner_fields", "the rule that refused it");
  assert.ok((await refusal.innerText()).includes(en["rule.nc.owner_fields"]), "said in plain words");

  // Nothing is lost: the tablet still holds the text, the export carries the document,
  // and the server kept the refused change in quarantine without merging it.
  const download = page.waitForEvent("download");
  await page.getByRole("link", { name: en["refused.export"] }).click();
  const file = JSON.parse(readFileSync(await (await download).path(), "utf8"));
  assert.ok(file.documents[ncId], "the export holds the NC's document");
  assert.ok(file.refused.some((r) => r.doc === ncId));
  assert.equal(Number(sql(`SELECT COUNT(*) FROM quarantine WHERE doc_id = '${ncId}'`)), Number(before) + 1);
  await page.goto(`${new URL(page.url()).origin}/#/nc/${ncId}`);
  await page.getByLabel(en["nc.correction"]).waitFor();
  assert.equal(await page.getByLabel(en["nc.correction"]).inputValue(), correction, "the tablet still holds the text");
  assert.deepEqual(errors, [], "no script error on the page");
  await context.close();

  // The unit's nodal officer sees it among the refused changes: who, from
  // which tablet, why in plain words, and what it tried to write.
  const nodal = await open();
  await signIn(nodal.page, "a.rao");
  await nodal.page.getByRole("link", { name: en["report.quarantine.link"] }).click();
  await nodal.page.getByRole("heading", { name: en["report.quarantine.title"] }).waitFor();
  await nodal.page.getByRole("button", { name: en["report.show"] }).click();
  const held = nodal.page.locator("#report-held > li").first();
  await held.waitFor();
  const total = sql(`SELECT COUNT(*) FROM quarantine`);
  await nodal.page.locator("#report-heading", { hasText: en["report.quarantine.count"].replace("{count}", total).split(";")[0] }).waitFor();
  assert.match(await held.locator("p.question").innerText(), /^s\.khan, /);
  await held.getByText(en["rule.nc.owner_fields"], { exact: false }).waitFor();
  await held.getByText(`set 'correction' to "${correction}"`).waitFor();
  await nodal.page.screenshot({ path: path.join(shots, "quarantine-en-1280x800.png"), fullPage: true });
  await bothLanguages(nodal.page, "the refused changes", (c) =>
    nodal.page.getByRole("heading", { name: c["report.quarantine.title"], exact: true }).waitFor(),
  );
  assert.deepEqual(nodal.errors, [], "no script error on the nodal officer's page");
  await nodal.context.close();
});
