// The auditor's day in the browser (issue 16's scenarios a and b): answers,
// a finding and its NC made offline survive a reload and reach the server's
// database; two auditors answer one item differently offline, both see the
// contest after sync, and the lead settles it in one tap for both.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import path from "node:path";
import { answer, base, beginAndStart, en, open, photo, planAudit, shots, signIn, sql, status, token } from "./harness.mjs";

test("offline, an auditor answers, raises a finding and its NC; a reload keeps them; online, the server holds them", async () => {
  const number = "IA/DEMO-I/2025-26/004";
  // P07 (exigencies) brings the date item "ex.tested" into the checklist.
  const planned = await planAudit(number, "k.iyer", ["s.khan"], ["P03", "P04", "P07"]);
  const { context, page, errors } = await open();
  await signIn(page, "k.iyer");
  await beginAndStart(page, number);

  await context.setOffline(true);
  await status(page).filter({ hasText: en["state.offline"] }).waitFor();
  await answer(page, "sd.timeliness@P03", en["answer.partly"]);
  await answer(page, "sd.timeliness@P04", en["answer.conform"]);
  await status(page).filter({ hasText: en["state.saved_tablet"] }).waitFor();
  // A date answer is written DD-MM-YYYY: a day not on the calendar is refused
  // with the reason, eight digits from the number pad read back with dashes.
  const dated = page.locator('li.item[data-key="ex.tested"]');
  const day = dated.getByLabel(en["item.value"]);
  await day.fill("31-11-2025");
  await day.blur();
  await dated.getByText(en["date.no_such_day"]).waitFor();
  assert.ok(await dated.getByRole("button", { name: en["item.save"] }).isDisabled(), "no such day is saved");
  await day.fill("05112025");
  await day.blur();
  assert.equal(await day.inputValue(), "05-11-2025");
  assert.equal(await dated.getByText(en["date.no_such_day"]).count(), 0, "the reason goes once the date is right");
  await dated.getByRole("button", { name: en["item.save"] }).click();
  await dated.locator(".answer", { hasText: "05-11-2025" }).waitFor();
  // A note on the item, kept with its answer.
  const item = page.locator('li.item[data-key="sd.timeliness@P03"]');
  await item.getByText(en["item.note_add"]).click();
  await item.getByLabel(en["item.note"]).fill("2 of 10 amendments took 19 days against 15.");
  await item.getByRole("button", { name: en["item.note_save"] }).click();
  await item.locator(".note", { hasText: "19 days against 15" }).waitFor();
  // A photo of the register, from the camera: downscaled and kept on the tablet, attached to the answer.
  await item.locator("input[type=file]").setInputFiles(await photo(page, "register"));
  const thumb = item.locator(".files img");
  await thumb.waitFor();
  const sha256 = await item.locator(".files li").getAttribute("data-sha256");
  assert.match(sha256, /^[0-9a-f]{64}$/);
  assert.deepEqual(
    await thumb.evaluate((img) => [img.naturalWidth, img.naturalHeight]),
    [1600, 1200],
    "a 2400 × 1800 photo is kept at 1600 × 1200",
  );

  // A minor finding from the item raises its NC (a draft until the report), with a provisional number.
  await item.getByRole("link", { name: en["finding.raise"] }).click();
  await page.getByRole("heading", { name: en["finding.new"] }).waitFor();
  await page.getByLabel(en["finding.class.minor"]).check();
  await page.getByLabel(en["finding.text"]).fill("Amendments ARN-118 and ARN-131 approved in 19 days.");
  await page.locator("input[type=file]").setInputFiles(await photo(page, "ARN-118", 1200, 1600));
  await page.locator("form .files img").waitFor();
  assert.ok(await page.getByLabel(en["finding.raise_nc"]).isChecked());
  await page.getByRole("button", { name: en["finding.submit"] }).click();
  await page.getByRole("heading", { name: number }).waitFor();
  await page.locator("li[data-finding]", { hasText: "ARN-118" }).waitFor();

  // A reload with no network: the app, the audit, the answers and the finding are all on the tablet.
  await page.reload();
  await page.getByRole("heading", { name: number }).waitFor();
  await status(page).filter({ hasText: en["state.offline"] }).waitFor();
  const partly = page.locator('li.item[data-key="sd.timeliness@P03"]').getByRole("button", { name: en["answer.partly"] });
  assert.equal(await partly.getAttribute("aria-pressed"), "true");
  await page.locator("li[data-finding]", { hasText: "ARN-118" }).waitFor();
  // The photos show from the tablet's own store.
  for (const img of await page.locator(".files img").all()) {
    await img.scrollIntoViewIfNeeded();
    const shown = await img.evaluate((i) => i.decode().then(() => i.naturalWidth > 0), undefined, { timeout: 10_000 });
    assert.ok(shown, "a kept photo shows offline");
  }
  assert.equal(await page.locator(".files img").count(), 2);
  await page.locator('li.item[data-key="ex.tested"] .answer', { hasText: "05-11-2025" }).waitFor();

  // Search, offline, over what the tablet holds: by the provisional number, and by words.
  await page.getByRole("link", { name: en["audit.back"] }).click();
  const search = page.getByLabel(en["search.label"]);
  await search.fill("d-iyer");
  await page.locator("#search-hits li", { hasText: /D-IYER-\d\d/ }).waitFor();
  await search.fill("ARN-118 19 days");
  const hits = await page.locator("#search-hits li").allInnerTexts();
  assert.ok(hits.some((h) => h.includes(en["finding.heading"])), hits.join(" | "));
  assert.ok(hits.some((h) => h.includes(en["nc.description"]) && /D-IYER-\d\d/.test(h)), hits.join(" | "));
  await search.fill("ARN-118 nowhere-written");
  assert.equal(await page.locator("#search-hits li").count(), 0, "every word must be found");
  await search.fill("ARN-118");
  await page.locator("#search-hits li", { hasText: en["finding.heading"] }).getByRole("link").click();
  await page.getByRole("heading", { name: number }).waitFor();
  assert.equal(sql(`SELECT responses FROM audits WHERE doc_id = '${planned.id}'`), "0", "nothing reached the server offline");

  // Online: the tablet says so once the server holds everything, and its database does.
  await context.setOffline(false);
  await status(page).filter({ hasText: en["state.saved_server"] }).waitFor({ timeout: 20_000 });
  await page.screenshot({ path: path.join(shots, "audit-saved-en-1280x800.png") });
  assert.equal(sql(`SELECT responses FROM audits WHERE doc_id = '${planned.id}'`), "3");
  assert.equal(sql(`SELECT class || ' ' || clause || ' ' || process FROM findings WHERE audit_id = '${planned.id}'`), "minor 3.2.1 P03");
  assert.equal(
    sql(`SELECT class || ' ' || state || ' ' || process FROM ncs WHERE audit_id = '${planned.id}'`),
    "minor draft P03",
  );
  // The photos are on the server, whole, and the documents refer to them.
  assert.equal(
    sql(
      `SELECT COUNT(*) FROM blob_refs r JOIN blobs b ON b.sha256 = r.sha256 WHERE r.doc_id = '${planned.id}' AND b.complete_at IS NOT NULL`,
    ),
    "2",
  );
  // What the server serves back is the JPEG the tablet made: its bytes hash to its name.
  const served = await fetch(`${base}/api/v1/blobs/${sha256}`, {
    headers: { authorization: `Bearer ${await token("k.iyer")}` },
  });
  assert.equal(served.status, 200);
  const bytes = Buffer.from(await served.arrayBuffer());
  assert.equal(createHash("sha256").update(bytes).digest("hex"), sha256);
  assert.deepEqual([...bytes.subarray(0, 2)], [0xff, 0xd8], "a JPEG");
  assert.equal(
    sql(`SELECT mime || ' ' || (SELECT size FROM blobs WHERE blobs.sha256 = blob_refs.sha256) FROM blob_refs WHERE sha256 = '${sha256}'`),
    `image/jpeg ${bytes.length}`,
  );
  assert.match(sql(`SELECT number FROM ncs WHERE audit_id = '${planned.id}'`), /^NC-\d+$/, "the server numbered it");
  assert.match(
    sql(`SELECT provisional FROM search_terms WHERE doc_id = (SELECT doc_id FROM ncs WHERE audit_id = '${planned.id}')`),
    /^D-IYER-\d\d$/,
    "the tablet's provisional number",
  );
  assert.deepEqual(errors, [], "no script error on the page");
  await context.close();
});

test("two auditors answer one item differently offline; both see the contest, and the lead settles it for both", async () => {
  const number = "IA/DEMO-I/2025-26/005";
  const planned = await planAudit(number);
  const lead = await open();
  const member = await open({ width: 800, height: 1280 });
  await signIn(lead.page, "k.iyer");
  await beginAndStart(lead.page, number);
  await signIn(member.page, "s.khan");
  const card = member.page.locator("li.card", { hasText: number });
  await card.locator(".audit-state", { hasText: en["audit.state.in_progress"] }).waitFor();
  await card.getByRole("link").click();
  await member.page.getByRole("heading", { name: number }).waitFor();
  await status(member.page).filter({ hasText: en["state.saved_server"] }).waitFor();

  const key = "sd.timeliness@P03";
  await lead.context.setOffline(true);
  await member.context.setOffline(true);
  await answer(lead.page, key, en["answer.conform"]);
  await answer(member.page, key, en["answer.not_conform"]);

  // The member reconnects first, then the lead.
  await member.context.setOffline(false);
  await status(member.page).filter({ hasText: en["state.saved_server"] }).waitFor({ timeout: 20_000 });
  await lead.context.setOffline(false);
  await status(lead.page).filter({ hasText: en["state.saved_server"] }).waitFor({ timeout: 20_000 });

  for (const { page } of [lead, member]) {
    const contest = page.locator(`li.item[data-key="${key}"]`).getByRole("group", { name: en["audit.contested"] });
    await contest.waitFor({ timeout: 20_000 });
    const values = await contest.locator(".value").allInnerTexts();
    assert.equal(values.length, 2, values.join(" | "));
    assert.ok(values.some((v) => v.includes(en["answer.conform"]) && v.includes("k.iyer")), values.join(" | "));
    assert.ok(values.some((v) => v.includes(en["answer.not_conform"]) && v.includes("s.khan")), values.join(" | "));
  }
  assert.equal(sql(`SELECT COUNT(*) FROM contested_values WHERE doc_id = '${planned.id}'`), "2", "both values in the report rows");
  // Only the lead may choose.
  assert.equal(await member.page.getByRole("button", { name: en["audit.choose"] }).count(), 0);
  await lead.page.locator(`li.item[data-key="${key}"]`).scrollIntoViewIfNeeded();
  await lead.page.screenshot({ path: path.join(shots, "contest-lead-en-1280x800.png") });

  // One tap on the member's answer settles it everywhere.
  const khans = lead.page.locator(`li.item[data-key="${key}"] .value`, { hasText: "s.khan" });
  await khans.getByRole("button", { name: en["audit.choose"] }).click();
  for (const { page } of [lead, member]) {
    const item = page.locator(`li.item[data-key="${key}"]`);
    await item.getByRole("group", { name: en["audit.contested"] }).waitFor({ state: "detached", timeout: 20_000 });
    await item.locator(".answer", { hasText: en["answer.not_conform"] }).waitFor();
  }
  await status(lead.page).filter({ hasText: en["state.saved_server"] }).waitFor({ timeout: 20_000 });
  assert.equal(sql(`SELECT COUNT(*) FROM contested_values WHERE doc_id = '${planned.id}'`), "0");
  assert.deepEqual([...lead.errors, ...member.errors], [], "no script error on the pages");
  await lead.context.close();
  await member.context.close();
});
