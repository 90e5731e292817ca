// The nodal officer's dashboard (issue 16's scenario d): every count it
// shows, read from the documents on the tablet, equals what the server's
// database holds for the unit; the officer opens a management review and
// the server holds it.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { en, hi, open, shots, signIn, sql, status } from "./harness.mjs";

/** The counts of one table of the dashboard, by row key. */
async function counts(page, id) {
  const rows = await page.locator(`table[data-counts="${id}"] tr`).evaluateAll((trs) =>
    trs.map((tr) => [tr.dataset.key, tr.querySelector("td").textContent]),
  );
  return Object.fromEntries(rows.map(([k, v]) => [k, Number(v.replace(/,/g, ""))]));
}

/** `SELECT key, COUNT(*) ... GROUP BY key` as an object, every key of `keys` present. */
function grouped(query, keys) {
  const out = Object.fromEntries(keys.map((k) => [k, 0]));
  for (const line of sql(query).split("\n").filter(Boolean)) {
    const [k, n] = line.split("|");
    out[k] = Number(n);
  }
  return out;
}

const LIVE = "('open', 'response_submitted', 'plan_accepted', 'implemented')";

test("the nodal officer's dashboard shows what the server's database holds, and opens a review", async () => {
  const { context, page, errors } = await open();
  await signIn(page, "a.rao");
  await page.getByRole("heading", { name: en["dash.heading"] }).waitFor();
  await status(page).filter({ hasText: en["state.saved_server"] }).waitFor({ timeout: 20_000 });
  const units = "(SELECT unit FROM ncs)";
  // "Saved on the server" speaks of the tablet's own work: the unit's documents may still be arriving.
  const total = Number(sql(`SELECT COUNT(*) FROM ncs WHERE unit IN ${units}`));
  await page.waitForFunction(
    (n) =>
      [...document.querySelectorAll('table[data-counts="nc-states"] td')].reduce((a, td) => a + Number(td.textContent), 0) === n,
    total,
  );
  const begun = Number(sql(`SELECT COUNT(*) FROM audits`));
  await page.waitForFunction(
    (n) =>
      [...document.querySelectorAll('table[data-counts="audit-states"] tr:not([data-key="planned"]) td')].reduce(
        (a, td) => a + Number(td.textContent),
        0,
      ) === n,
    begun,
  );

  const states = ["draft", "open", "response_submitted", "plan_accepted", "implemented", "closed", "withdrawn"];
  const held = await counts(page, "nc-states");
  assert.deepEqual(held, grouped(`SELECT state, COUNT(*) FROM ncs WHERE unit IN ${units} GROUP BY state`, states));
  assert.ok(Object.values(held).reduce((a, b) => a + b) >= 8, "the demo's NCs are all there");

  // Ages in days since raised, of the NCs neither closed nor withdrawn.
  const ages = await counts(page, "nc-ages");
  assert.deepEqual(
    ages,
    grouped(
      `SELECT CASE WHEN d <= 15 THEN '0-15' WHEN d <= 30 THEN '16-30' WHEN d <= 60 THEN '31-60' WHEN d <= 90 THEN '61-90' ELSE '91+' END, COUNT(*)
       FROM (SELECT CAST(julianday(date('now')) - julianday(raised_on) AS INTEGER) AS d FROM ncs WHERE state IN ${LIVE}) GROUP BY 1`,
      ["0-15", "16-30", "31-60", "61-90", "91+"],
    ),
  );
  const levels = await counts(page, "nc-levels");
  assert.equal(
    Object.values(levels).reduce((a, b) => a + b, 0),
    Number(sql(`SELECT COUNT(*) FROM ncs WHERE state IN ${LIVE}`)),
    "every open NC has a level",
  );

  // Overdue: an open NC past its response date, or an accepted plan past its action date.
  const overdue = sql(
    `SELECT doc_id FROM ncs WHERE (state = 'open' AND response_due < date('now')) OR (state = 'plan_accepted' AND action_due < date('now')) ORDER BY doc_id`,
  ).split("\n").filter(Boolean);
  const listed = (await page.locator("#overdue li[data-nc]").evaluateAll((lis) => lis.map((li) => li.dataset.nc))).sort();
  assert.deepEqual(listed, overdue);
  assert.ok(listed.length > 0, "the demo has overdue NCs");

  const audits = await counts(page, "audit-states");
  assert.deepEqual(audits, {
    planned: Number(sql(`SELECT COUNT(*) FROM planned_audits WHERE id NOT IN (SELECT id FROM documents)`)),
    ...grouped(`SELECT state, COUNT(*) FROM audits GROUP BY state`, ["in_progress", "in_review", "report_issued", "closed"]),
  });

  // Amendments not acknowledged: those of the officer's units without an acknowledgement row.
  const pending = await page.locator("#amendments li[data-amendment]").evaluateAll((lis) =>
    lis.map((li) => [li.dataset.amendment, li.querySelector(".overdue").textContent]),
  );
  const acked = sql(`SELECT amendment_id || ' ' || unit FROM amendment_acks`).split("\n");
  assert.ok(pending.length > 0);
  for (const [id, text] of pending) {
    assert.ok(!acked.includes(`${id} DEMO-I-DIV2`) && text.includes("DEMO-I-DIV2"), `${id}: ${text}`);
    assert.ok(!text.includes("DEMO-I,") && !text.endsWith("DEMO-I"), "DEMO-I acknowledged it");
  }
  await page.screenshot({ path: path.join(shots, "dashboard-en-1280x800.png"), fullPage: true });

  // One overdue NC opens from the list.
  await page.locator("#overdue li a").first().click();
  await page.getByRole("heading", { name: /NC-\d+/ }).waitFor();
  await page.goBack();

  // A management review of the unit: made on the tablet, held by the server.
  await page.getByLabel(en["dash.review_unit"]).selectOption("DEMO-I");
  await page.getByLabel(en["dash.review_title"]).fill("MR-7 (December 2026)");
  await page.getByRole("button", { name: en["dash.review_submit"] }).click();
  await page.locator("#reviews li", { hasText: "MR-7 (December 2026)" }).waitFor();
  await status(page).filter({ hasText: en["state.saved_server"] }).waitFor({ timeout: 20_000 });
  const review = await page.locator("#reviews li", { hasText: "MR-7" }).getAttribute("data-review");
  assert.equal(sql(`SELECT kind || ' ' || unit || ' ' || created_by FROM documents WHERE id = '${review}'`), "review DEMO-I a.rao");

  // In Hindi on a portrait tablet, the same counts.
  await page.setViewportSize({ width: 800, height: 1280 });
  await page.getByRole("button", { name: en["lang.switch_label"] }).click();
  await page.getByRole("heading", { name: hi["dash.heading"] }).waitFor();
  assert.deepEqual(await counts(page, "nc-states"), held);
  await page.screenshot({ path: path.join(shots, "dashboard-hi-800x1280.png"), fullPage: true });
  assert.deepEqual(errors, [], "no script error on the page");
  await context.close();
});

test("the process owner asks for a later due date, the nodal officer grants it, and the NC is no longer overdue", async () => {
  const ncId = sql(`SELECT doc_id FROM ncs WHERE number = 'NC-07'`);
  assert.equal(sql(`SELECT state FROM ncs WHERE doc_id = '${ncId}'`), "open");
  const asked = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);

  // The owner of P02 asks, with the reason, on his NC.
  const owner = await open({ width: 800, height: 1280 });
  await signIn(owner.page, "ac.div2");
  await owner.page.locator(`li.card[data-nc="${ncId}"]`).getByRole("link").click();
  // The due date is written as users write dates; a date before the current due date is not sent.
  const [y, m, d] = asked.split("-");
  const due = owner.page.getByLabel(en["nc.extend_due"]);
  const current = sql(`SELECT response_due FROM ncs WHERE doc_id = '${ncId}'`);
  await due.fill("01-01-2020");
  await owner.page.getByLabel(en["nc.extend_why"]).fill("The files are with the CAG audit party until the 20th.");
  await owner.page.getByRole("button", { name: en["nc.ask_submit"] }).click();
  const showCurrent = current.split("-").reverse().join("-");
  await owner.page.getByText(en["date.before"].replace("{date}", showCurrent)).waitFor();
  assert.equal(await owner.page.getByText(en["nc.request_waiting"]).count(), 0, "nothing was asked");
  await due.fill(`${d}-${m}-${y}`);
  await owner.page.getByRole("button", { name: en["nc.ask_submit"] }).click();
  await owner.page.getByText(en["nc.request_waiting"]).waitFor();
  // One request at a time: the form is gone while it waits.
  assert.equal(await owner.page.getByRole("button", { name: en["nc.ask_submit"] }).count(), 0);
  await status(owner.page).filter({ hasText: en["state.saved_server"] }).waitFor({ timeout: 20_000 });

  // The nodal officer sees it waiting on the dashboard, opens the NC and grants it.
  const nodal = await open();
  await signIn(nodal.page, "a.rao");
  const waiting = nodal.page.locator(`#requests li[data-nc="${ncId}"]`);
  await waiting.waitFor({ timeout: 20_000 });
  assert.ok((await nodal.page.locator(`#overdue li[data-nc="${ncId}"]`).count()) === 1, "overdue before");
  await waiting.getByRole("link").click();
  await nodal.page.getByRole("button", { name: en["nc.request_grant"].replace("{date}", `${d}-${m}-${y}`) }).click();
  await nodal.page.getByText(en["nc.request_granted"].split(" {user}")[0]).first().waitFor();
  await status(nodal.page).filter({ hasText: en["state.saved_server"] }).waitFor({ timeout: 20_000 });
  assert.equal(sql(`SELECT response_due FROM ncs WHERE doc_id = '${ncId}'`), asked, "the server's due date moved");
  await nodal.page.screenshot({ path: path.join(shots, "nc-extension-en-1280x800.png"), fullPage: true });

  // Back on the dashboard: nothing waits, and the NC is no longer overdue.
  await nodal.page.goBack();
  await nodal.page.getByText(en["dash.requests_none"]).waitFor();
  assert.equal(await nodal.page.locator(`#overdue li[data-nc="${ncId}"]`).count(), 0);
  // The owner sees the answer.
  await owner.page.getByText(en["nc.request_granted"].replace("{user}", "a.rao").split(",")[0]).waitFor({ timeout: 20_000 });
  assert.deepEqual([...owner.errors, ...nodal.errors], [], "no script error on the pages");
  await owner.context.close();
  await nodal.context.close();
});
