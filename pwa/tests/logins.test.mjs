// Every demo login that `sqm serve --demo` prints signs in on a fresh tablet
// and finds its role's work there (issue 16: "a new user can log in with each
// demo login and do their role's work"). The other files follow each role's
// work in depth; this one walks the printed list, so a login added to the
// list without a walkthrough here fails.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { en, open, printed, shots, signIn, sql, status } from "./harness.mjs";

/** The logins the server printed: [username, what they do]. */
function logins() {
  const list = printed.split("Demo logins")[1] ?? "";
  return [...list.matchAll(/^ {2}(\S+) +(.+)$/gm)].map((m) => [m[1], m[2]]);
}

const LIVE = "('open', 'response_submitted', 'plan_accepted', 'implemented')";

/** The NC cards on the home screen, by document id. */
const ncCards = (page) => page.locator("li.card[data-nc]").evaluateAll((lis) => lis.map((li) => li.dataset.nc).sort());

/** Waits until the home screen shows `n` NC cards (the unit's documents arrive with the first sync). */
async function cardsReach(page, n) {
  await page.waitForFunction((n) => document.querySelectorAll("li.card[data-nc]").length === n, n, { timeout: 20_000 });
}

/** The dashboard's table of units: DEMO-I's open and overdue NCs as the server's database holds them. */
async function unitCounts(page) {
  await page.getByRole("heading", { name: en["dash.heading"] }).waitFor();
  const live = sql(`SELECT COUNT(*) FROM ncs WHERE unit = 'DEMO-I' AND state IN ${LIVE}`);
  await page.waitForFunction(
    (n) => document.querySelector('#units tr[data-unit="DEMO-I"] td[data-col="open"]')?.textContent === n,
    live,
    { timeout: 20_000 },
  );
  const overdue = sql(
    `SELECT COUNT(*) FROM ncs WHERE unit = 'DEMO-I' AND ((state = 'open' AND response_due < date('now')) OR (state = 'plan_accepted' AND action_due < date('now')))`,
  );
  assert.equal(await page.locator('#units tr[data-unit="DEMO-I"] td[data-col="overdue"]').textContent(), overdue);
  assert.ok(Number(live) > 0 && Number(overdue) > 0, "the demo unit has open and overdue NCs");
}

/** Each login's walkthrough: what the home screen shows them, and one piece of their work. */
const WALKS = {
  // Lead auditor: audits 001 and 003 as lead; 003 opens on its checklist with the lead's moves.
  "k.iyer": async (page) => {
    for (const n of ["001", "003"]) {
      const card = page.locator("li.card[data-audit]", { hasText: `IA/DEMO-I/2025-26/${n}` });
      await card.getByText(en["audits.lead"]).waitFor();
    }
    await page.getByRole("link", { name: en["audit.open"].replace("{number}", "IA/DEMO-I/2025-26/003") }).click();
    await page.getByRole("heading", { name: "IA/DEMO-I/2025-26/003" }).waitFor();
    await page.locator("li.item[data-key]").first().waitFor();
    assert.ok((await page.locator("li.item[data-key]").count()) > 10, "the checklist is drawn");
    await page.locator(".audit-state", { hasText: en["audit.state.in_review"] }).waitFor();
  },
  // Team member: audits 002 and 003 as a member.
  "s.khan": async (page) => {
    for (const n of ["002", "003"]) {
      const card = page.locator("li.card[data-audit]", { hasText: `IA/DEMO-I/2025-26/${n}` });
      await card.getByText(en["audits.member"]).waitFor();
    }
  },
  // Process owner of P02 and P03: the NCs raised on them, and nothing else.
  "ac.div2": async (page) => {
    const mine = sql(`SELECT doc_id FROM ncs WHERE process IN ('P02', 'P03') AND state <> 'draft' ORDER BY doc_id`)
      .split("\n")
      .filter(Boolean);
    assert.ok(mine.length > 0, "the demo has NCs on P02 and P03");
    await cardsReach(page, mine.length);
    assert.deepEqual(await ncCards(page), mine.sort());
  },
  // Process owner of P08: his NCs; on NC-05 he reads why his first plan was rejected, the time he was given, and his plan as the auditor reads it.
  "m.das": async (page) => {
    const mine = sql(`SELECT doc_id FROM ncs WHERE process = 'P08' AND state <> 'draft' ORDER BY doc_id`)
      .split("\n")
      .filter(Boolean);
    assert.ok(mine.length > 0, "the demo has NCs on P08");
    await cardsReach(page, mine.length);
    assert.deepEqual(await ncCards(page), mine.sort());
    // NC-05: his first plan was rejected, with the reason; its actions' due date was extended.
    const nc = sql(`SELECT doc_id FROM ncs WHERE process = 'P08' AND number = 'NC-05'`);
    await page.locator(`li.card[data-nc="${nc}"]`).getByRole("link").click();
    await page.locator(".audit-state", { hasText: en["nc.state.response_submitted"] }).waitFor();
    await page.getByText("The root cause does not explain why no interim replies were sent.").waitFor();
    await page.getByText(en["nc.extension.action"].replace("{date}", "28-02-2026")).waitFor();
    // While the auditor reads it, his plan is shown, not offered for rewriting.
    await page.getByText("No tracking of grievances against the 21-day norm").waitFor();
    assert.equal(await page.getByLabel(en["nc.correction"]).count(), 0);
  },
  // Nodal officer of the unit: the dashboard of DEMO-I, with the units below it.
  "a.rao": async (page) => {
    await unitCounts(page);
    await page.locator('#units tr[data-unit="DEMO-I-DIV2"]').waitFor();
  },
  // Apex nodal officer: the dashboard over the units below; one unit picked, its NCs open from the overdue list.
  "v.nair": async (page) => {
    await unitCounts(page);
    await page.locator(".unit-pick select").selectOption("DEMO-I");
    assert.equal(await page.locator("#units").count(), 0, "the table of units is for all units");
    await page.locator("#overdue li a").first().click();
    await page.locator(".audit-state").first().waitFor();
    await page.screenshot({ path: path.join(shots, "apex-nc-en-1280x800.png"), fullPage: true });
    await page.goBack();
  },
  // Administrator: told where the administration is done.
  "sqm.admin": async (page) => {
    await page.getByRole("heading", { name: en["admin.heading"] }).waitFor();
    await page.getByText(en["admin.where"]).waitFor();
    assert.equal(await page.getByRole("heading", { name: en["dash.heading"] }).count(), 0);
  },
};

test("every demo login the run command prints signs in and finds its role's work", async () => {
  const printedLogins = logins();
  assert.deepEqual(
    printedLogins.map(([u]) => u).sort(),
    Object.keys(WALKS).sort(),
    `each printed login has a walkthrough: ${printed}`,
  );
  for (const [user] of printedLogins) {
    const { context, page, errors } = await open();
    await signIn(page, user);
    await status(page).filter({ hasText: en["state.saved_server"] }).waitFor({ timeout: 20_000 });
    await WALKS[user](page);
    await page.screenshot({ path: path.join(shots, `login-${user}-en-1280x800.png`), fullPage: true });
    assert.deepEqual(errors, [], `no script error for ${user}`);
    await context.close();
  }
});
