// An NC's way between the auditor and the process owner in the browser
// (issue 16's scenario c): the auditor raises it from a finding, the process
// owner of P03 answers it with correction, root cause and an action and
// submits, and the auditor accepts the plan, each in their own context;
// the owner marks the action done and attaches a PDF as implementation
// evidence (its upload cut halfway and resumed), and the auditor verifies
// and closes it; the server's database follows every step.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import path from "node:path";
import { answer, beginAndStart, en, hi, open, planAudit, shots, signIn, sql, status } from "./harness.mjs";

test("the auditor raises an NC, the process owner answers it, the auditor accepts the plan, the owner shows it done with evidence, and the auditor closes it", async () => {
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
  // The refusal says what the rule means in the catalogue's words, then the rule's own.
  await owner.page.getByRole("alert").filter({ hasText: en["rule.move.requirement"] }).waitFor();
  await owner.page.locator(".audit-state", { hasText: en["nc.state.open"] }).waitFor();
  await owner.page.getByLabel(en["nc.action_text"]).fill("Daily queue report to the AC, with cases over 10 days flagged.");
  await owner.page.getByLabel(en["nc.action_owner"]).fill("Supdt Div-II");
  // The target date is written DD-MM-YYYY; a form with a day not on the calendar is not sent.
  const target = owner.page.getByLabel(en["nc.action_target"]);
  await target.fill("30-02-2026");
  await owner.page.getByRole("button", { name: en["nc.action_add"] }).click();
  await owner.page.getByText(en["date.no_such_day"]).waitFor();
  assert.equal(await owner.page.locator("li[data-action]").count(), 0, "no action with no such day");
  assert.equal(await owner.page.getByLabel(en["nc.action_text"]).inputValue(), "Daily queue report to the AC, with cases over 10 days flagged.", "nothing typed is lost");
  await target.fill("15-03-2026");
  await owner.page.getByRole("button", { name: en["nc.action_add"] }).click();
  await owner.page.locator("li[data-action]", { hasText: "15-03-2026" }).waitFor();
  await owner.page.screenshot({ path: path.join(shots, "nc-owner-en-800x1280.png"), fullPage: true });
  await owner.page.getByRole("button", { name: en["lang.switch_label"] }).click();
  await owner.page.getByRole("heading", { name: hi["nc.actions"] }).waitFor();
  // What was said of the owner's saves changes language with the screen.
  assert.equal(await owner.page.getByRole("status").filter({ hasText: hi["item.saved"] }).count(), 3);
  await owner.page.getByRole("button", { name: hi["nc.move.submit_response"] }).click();
  await owner.page.locator(".audit-state", { hasText: hi["nc.state.response_submitted"] }).waitFor();
  await status(owner.page).filter({ hasText: hi["state.saved_server"] }).waitFor({ timeout: 20_000 });
  assert.equal(sql(`SELECT state FROM ncs WHERE doc_id = '${ncId}'`), "response_submitted");
  // While the auditor reads the plan, it is not rewritten under them, and nothing is yet marked done.
  assert.equal(await owner.page.getByLabel(hi["nc.correction"]).count(), 0, "the submitted correction is not offered");
  await owner.page.getByText("No daily check of the amendment queue").waitFor();
  assert.equal(await owner.page.getByLabel(hi["nc.action_text"]).count(), 0, "no new action while submitted");
  assert.equal(await owner.page.getByRole("button", { name: hi["nc.action_mark_done"] }).count(), 0);
  assert.equal(await owner.page.locator('section[data-evidence="implementation"] input[type=file]').count(), 0);
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

  // The owner (reading Hindi) marks the action done and attaches the daily report as a PDF.
  // Its upload is cut after the first part: it resumes from the server's count, not from 0.
  const parts = [];
  await owner.context.route("**/api/v1/blobs/*", (route) => {
    const req = route.request();
    if (req.method() !== "PUT") return route.continue();
    parts.push(req.headers()["content-range"]);
    return parts.length === 2 ? route.abort("connectionreset") : route.continue();
  });
  await owner.page.getByRole("button", { name: hi["nc.action_mark_done"] }).click();
  await owner.page.locator("li[data-action] .saved", { hasText: hi["nc.action_done_on"].replace("{date}", "") }).waitFor();
  const pdf = Buffer.concat([Buffer.from("%PDF-1.4\n"), randomBytes(600 * 1024), Buffer.from("\n%%EOF\n")]);
  const pdfSha = createHash("sha256").update(pdf).digest("hex");
  await owner.page
    .locator('section[data-evidence="implementation"] input[type=file]')
    .setInputFiles({ name: "daily-queue-report.pdf", mimeType: "application/pdf", buffer: pdf });
  await owner.page.locator(`section[data-evidence="implementation"] li[data-sha256="${pdfSha}"]`).waitFor();
  await owner.page.getByRole("button", { name: hi["nc.move.mark_implemented"] }).click();
  await owner.page.locator(".audit-state", { hasText: hi["nc.state.implemented"] }).waitFor();
  await status(owner.page).filter({ hasText: hi["state.saved_server"] }).waitFor({ timeout: 30_000 });
  assert.equal(sql(`SELECT state FROM ncs WHERE doc_id = '${ncId}'`), "implemented");
  assert.equal(sql(`SELECT size FROM blobs WHERE sha256 = '${pdfSha}' AND complete_at IS NOT NULL`), String(pdf.length));
  assert.equal(sql(`SELECT mime FROM blob_refs WHERE sha256 = '${pdfSha}' AND doc_id = '${ncId}'`), "application/pdf");
  const total = pdf.length;
  assert.equal(parts[0], `bytes 0-262143/${total}`, parts.join(" | "));
  assert.equal(parts[2], parts[1], `the cut part is sent again, not the file from 0: ${parts.join(" | ")}`);
  assert.equal(parts.filter((p) => p.startsWith("bytes 0-")).length, 1, parts.join(" | "));

  // The auditor verifies: the note first (the rules ask for it), then effective; the NC closes.
  await page.locator(".audit-state", { hasText: en["nc.state.implemented"] }).waitFor({ timeout: 20_000 });
  await page.locator('section[data-evidence="implementation"] a', { hasText: "daily-queue-report.pdf" }).waitFor();
  await page.getByLabel(en["nc.verification"]).fill("Queue report seen for 10 days; no case over 15 days since 01-03-2026.");
  await page.getByRole("button", { name: en["nc.save"].replace("{what}", en["nc.verification"]) }).click();
  await page.getByRole("button", { name: en["nc.move.verify_effective"] }).click();
  await page.locator(".audit-state", { hasText: en["nc.state.closed"] }).waitFor();
  await status(page).filter({ hasText: en["state.saved_server"] }).waitFor({ timeout: 20_000 });
  assert.equal(sql(`SELECT state FROM ncs WHERE doc_id = '${ncId}'`), "closed");
  // A closed NC's verification is kept as written.
  assert.equal(await page.getByLabel(en["nc.verification"]).count(), 0, "the verification is not offered once closed");
  await page.getByText("Queue report seen for 10 days").waitFor();
  await page.screenshot({ path: path.join(shots, "nc-auditor-en-1280x800.png"), fullPage: true });
  assert.deepEqual([...auditor.errors, ...owner.errors], [], "no script error on the pages");
  await auditor.context.close();
  await owner.context.close();
});
