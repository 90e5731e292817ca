// An NC's way between the auditor and the process owner in the browser
// (issue 16's scenario c): the auditor raises it from a finding, the process
// owner of P03 answers it with correction, root cause and an action and
// submits, and the auditor accepts the plan, each in their own context;
// the server's database follows every step.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { answer, beginAndStart, en, hi, open, planAudit, shots, signIn, sql, status } from "./harness.mjs";

test("the auditor raises an NC, the process owner answers it, and the auditor accepts the plan", async () => {
  const number = "IA/DEMO-I/2025-26/006";
  const planned = await planAudit(number);
  const auditor = await open();
  const { page } = auditor;
  await signIn(page, "k.iyer");
  await beginAndStart(page, number);
  await answer(page, "sd.timeliness@P03", en["answer.not_conform"]);
  await page.locator('li.item[data-key="sd.timeliness@P03"]').getByRole("link", { name: en["finding.raise"] }).click();
  await page.getByLabel(en["finding.class.minor"]).check();
  await page.getByLabel(en["finding.text"]).fill("3 of 10 amendments took over 15 days.");
  await page.getByRole("button", { name: en["finding.submit"] }).click();

  // The NC, a draft on the tablet, is raised to the process owner from its finding.
  await page.locator("li[data-finding] a", { hasText: en["nc.state.draft"] }).click();
  await page.locator(".audit-state", { hasText: en["nc.state.draft"] }).waitFor();
  await page.getByRole("button", { name: en["nc.move.raise"] }).click();
  await page.locator(".audit-state", { hasText: en["nc.state.open"] }).waitFor();
  await status(page).filter({ hasText: en["state.saved_server"] }).waitFor({ timeout: 20_000 });
  const ncId = sql(`SELECT doc_id FROM ncs WHERE audit_id = '${planned.id}'`);
  assert.equal(sql(`SELECT state FROM ncs WHERE doc_id = '${ncId}'`), "open");
  // The auditor does not write the owner's fields, nor submit for them.
  assert.equal(await page.getByLabel(en["nc.correction"]).count(), 0);
  assert.equal(await page.getByRole("button", { name: en["nc.move.submit_response"] }).count(), 0);

  // The process owner of P03 finds it among their NCs, on a phone-sized portrait screen.
  const owner = await open({ width: 800, height: 1280 });
  await signIn(owner.page, "ac.div2");
  const card = owner.page.locator(`li.card[data-nc="${ncId}"]`);
  await card.waitFor({ timeout: 20_000 });
  await card.getByRole("link").click();
  await owner.page.getByLabel(en["nc.correction"]).fill("The two pending amendments were approved on 20-02-2026.");
  await owner.page.getByRole("button", { name: en["nc.save"].replace("{what}", en["nc.correction"]) }).click();
  await owner.page.getByLabel(en["nc.root_cause"]).fill("No daily check of the amendment queue against the 15-day standard.");
  await owner.page.getByRole("button", { name: en["nc.save"].replace("{what}", en["nc.root_cause"]) }).click();
  // Submitting before any action is refused by the rules, with the reason, and changes nothing.
  await owner.page.getByRole("button", { name: en["nc.move.submit_response"] }).click();
  await owner.page.getByRole("alert").filter({ hasText: "at least one action" }).waitFor();
  await owner.page.locator(".audit-state", { hasText: en["nc.state.open"] }).waitFor();
  await owner.page.getByLabel(en["nc.action_text"]).fill("Daily queue report to the AC, with cases over 10 days flagged.");
  await owner.page.getByLabel(en["nc.action_owner"]).fill("Supdt Div-II");
  await owner.page.getByLabel(en["nc.action_target"]).fill("2026-03-15");
  await owner.page.getByRole("button", { name: en["nc.action_add"] }).click();
  await owner.page.locator("li[data-action]", { hasText: "15-03-2026" }).waitFor();
  await owner.page.getByRole("button", { name: en["nc.move.submit_response"] }).click();
  await owner.page.locator(".audit-state", { hasText: en["nc.state.response_submitted"] }).waitFor();
  await status(owner.page).filter({ hasText: en["state.saved_server"] }).waitFor({ timeout: 20_000 });
  assert.equal(sql(`SELECT state FROM ncs WHERE doc_id = '${ncId}'`), "response_submitted");
  await owner.page.screenshot({ path: path.join(shots, "nc-owner-en-800x1280.png"), fullPage: true });
  await owner.page.getByRole("button", { name: en["lang.switch_label"] }).click();
  await owner.page.getByRole("heading", { name: hi["nc.actions"] }).waitFor();
  // What was said of the owner's saves changes language with the screen.
  assert.equal(await owner.page.getByRole("status").filter({ hasText: hi["item.saved"] }).count(), 3);
  await owner.page.screenshot({ path: path.join(shots, "nc-owner-hi-800x1280.png"), fullPage: true });

  // The auditor sees the response arrive and accepts the plan; the owner sees it accepted.
  await page.locator(".audit-state", { hasText: en["nc.state.response_submitted"] }).waitFor({ timeout: 20_000 });
  await page.getByText("No daily check of the amendment queue").waitFor();
  await page.getByRole("button", { name: en["nc.move.accept_plan"] }).click();
  await page.locator(".audit-state", { hasText: en["nc.state.plan_accepted"] }).waitFor();
  await owner.page.locator(".audit-state", { hasText: hi["nc.state.plan_accepted"] }).waitFor({ timeout: 20_000 });
  await status(page).filter({ hasText: en["state.saved_server"] }).waitFor({ timeout: 20_000 });
  assert.equal(sql(`SELECT state FROM ncs WHERE doc_id = '${ncId}'`), "plan_accepted");
  const history = await page.locator("h3", { hasText: en["nc.history"] }).locator("+ ul").innerText();
  for (const [move, user] of [["raise", "k.iyer"], ["submit_response", "ac.div2"], ["accept_plan", "k.iyer"]]) {
    assert.match(history, new RegExp(`${en[`nc.done.${move}`]} · ${user}`), history);
  }
  await page.screenshot({ path: path.join(shots, "nc-auditor-en-1280x800.png"), fullPage: true });
  assert.deepEqual([...auditor.errors, ...owner.errors], [], "no script error on the pages");
  await auditor.context.close();
  await owner.context.close();
});
