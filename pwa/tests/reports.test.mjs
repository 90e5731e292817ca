// The nodal officer reads the NC ageing report on the tablet (issue 17): it
// opens from the dashboard, shows what the server's database holds as of
// the date asked, filters, downloads as CSV and opens its printable page;
// offline, it says a report needs the server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { bothLanguages, en, open, shots, signIn, sql, status } from "./harness.mjs";

test("the nodal officer opens the NC ageing report, filters it, downloads its CSV and prints it", async () => {
  const { context, page, errors } = await open();
  await signIn(page, "a.rao");
  await status(page).filter({ hasText: en["state.saved_server"] }).waitFor({ timeout: 20_000 });
  await page.getByRole("link", { name: en["report.link"] }).click();
  await page.getByRole("heading", { name: en["report.ageing.title"] }).waitFor();

  // As of the demo's date: the NCs still to be dealt with that the server's database holds.
  const live = sql(
    `SELECT number FROM ncs WHERE unit = 'DEMO-I' AND raised_on <= '2026-01-15' AND state IN ('open', 'response_submitted', 'plan_accepted', 'implemented') ORDER BY number`,
  ).split("\n");
  assert.ok(live.length >= 5, live.join(" "));
  await page.getByLabel(en["report.as_of"]).fill("15-01-2026");
  await page.getByRole("button", { name: en["report.show"] }).click();
  await page.locator("#report-heading", { hasText: "15-01-2026" }).waitFor();
  const shown = async () => (await page.locator("#report-ncs li p.question a").allInnerTexts()).sort();
  assert.deepEqual(await shown(), live);
  // NC-06's response was due 01-08-2025: 167 days overdue, level 3.
  const nc06 = page.locator("#report-ncs li", { hasText: "NC-06" });
  await nc06.getByText(en["nc.overdue"].replace("{days}", "167")).waitFor();
  await nc06.getByText(en["nc.level"].replace("{level}", "L3")).waitFor();
  await page.screenshot({ path: path.join(shots, "report-en-1280x800.png"), fullPage: true });
  // In Hindi too, with no English left, and accessible in both.
  await bothLanguages(page, "the NC ageing report", (c) =>
    page.locator("#report-ages caption", { hasText: c["report.by_age"] }).waitFor(),
  );

  // One process: only its NC.
  await page.getByLabel(en["report.process"]).fill("P08");
  await page.getByRole("button", { name: en["report.show"] }).click();
  await page.waitForFunction(() => document.querySelectorAll("#report-ncs li").length === 1);
  assert.deepEqual(await shown(), ["NC-05"]);

  // The CSV, as a download: UTF-8 with a byte order mark, the date, the NC.
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: en["report.csv"] }).click(),
  ]);
  assert.equal(download.suggestedFilename(), "nc-ageing-DEMO-I-2026-01-15.csv");
  const csv = await readFile(await download.path(), "utf8");
  assert.ok(csv.startsWith("\ufeffNC ageing,as of,2026-01-15"), csv.slice(0, 80));
  assert.equal(csv.split("\r\n").filter((l) => l.startsWith("NC-")).length, 1, csv);
  assert.match(csv, /^NC-05,DEMO-I,P08,3\.2\.3,major,m\.das,/m);

  // The printable page opens in a window of its own.
  const [popup] = await Promise.all([
    page.waitForEvent("popup"),
    page.getByRole("button", { name: en["report.print"] }).click(),
  ]);
  await popup.getByRole("heading", { name: "NC ageing" }).waitFor();
  await popup.getByText("As of 15-01-2026").waitFor();
  assert.equal(await popup.locator("tr[data-nc]").count(), 1);
  await popup.close();

  // Offline, the report says it needs the server, and nothing else is lost.
  await context.setOffline(true);
  await page.getByRole("button", { name: en["report.show"] }).click();
  await page.getByRole("alert").filter({ hasText: en["report.offline"] }).waitFor();
  assert.deepEqual(await shown(), ["NC-05"], "the report read last stays on the screen");
  assert.deepEqual(errors, [], "no script error on the page");
  await context.close();
});

test("the nodal officer reads the programme's adherence: the year's audits planned, begun and reported", async () => {
  const { context, page, errors } = await open({ width: 800, height: 1280 });
  await signIn(page, "a.rao");
  await page.getByRole("link", { name: en["report.adherence.link"] }).click();
  await page.getByRole("heading", { name: en["report.adherence.title"], exact: true }).waitFor();
  await page.getByLabel(en["report.as_of"]).fill("15-01-2026");
  await page.getByRole("button", { name: en["report.show"] }).click();
  await page.locator("#report-heading", { hasText: "2025-26" }).waitFor();
  // The demo's programme: 001, 002 and 003 due and begun by 15-01-2026, 001 and 002 reported.
  const unit = page.locator('#report-units li[data-unit="DEMO-I"]');
  const want = en["report.adherence.figures"]
    .replace("{planned}", "3")
    .replace("{due}", "3")
    .replace("{begun}", "3")
    .replace("{reported}", "2");
  assert.ok((await unit.locator("[data-figures]").innerText()).startsWith(want));
  await unit.getByText(en["report.adherence.approved"].replace("{date}", "20-06-2025")).waitFor();
  assert.equal(await page.locator("#report-audits li").count(), Number(sql(`SELECT COUNT(*) FROM planned_audits WHERE planned_from BETWEEN '2025-04-01' AND '2026-03-31'`)));
  assert.equal(await page.locator("#report-audits li .overdue").count(), 0, "nothing late");
  await page.screenshot({ path: path.join(shots, "adherence-en-800x1280.png"), fullPage: true });
  await bothLanguages(page, "programme adherence", (c) =>
    page.getByRole("heading", { name: c["report.adherence.title"], exact: true }).waitFor(),
  );
  assert.deepEqual(errors, [], "no script error on the page");
  await context.close();
});
