// The browser client in Debian's Chromium against a real server (see
// harness.mjs): sign-in, the list of audits, the languages, the headers, the
// app offline, the checklist and the phone. The screenshots it writes are
// looked at, and the latest are committed under docs/screenshots/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { base, browser, en, hi, shots, signIn } from "./harness.mjs";

test("the two catalogues hold the same keys, and every key the screens use", () => {
  assert.deepEqual(Object.keys(hi).sort(), Object.keys(en).sort());
  for (const [key, text] of Object.entries(hi)) assert.ok(text.trim(), `hi: ${key} is empty`);
  const dir = new URL("../src/", import.meta.url);
  const source = readdirSync(dir)
    .filter((f) => /\.tsx?$/.test(f))
    .map((f) => readFileSync(new URL(f, dir), "utf8"))
    .join("\n");
  const used = [...source.matchAll(/\bt\(\s*"([a-z_.]+)"/g)].map((m) => m[1]);
  const missing = used.filter((k) => !(k in en));
  assert.deepEqual(missing, [], "keys the screens use but the catalogues lack");
  assert.ok(used.length > 10, `only ${used.length} keys found in the screens`);
  // Every rule of sync-core has its meaning in the catalogues, said with a refusal.
  const rules = readFileSync(new URL("../../sync-core/src/rules.rs", import.meta.url), "utf8");
  const codes = [...rules.matchAll(/^\s+\w+ = "([a-z_.]+)",$/gm)].map((m) => m[1]);
  assert.ok(codes.length > 30, `only ${codes.length} rules read`);
  assert.deepEqual(codes.filter((c) => !(`rule.${c}` in en)), [], "rules the catalogues do not explain");
});

test("the server hands out the client with its caching and security headers", async () => {
  const index = await fetch(base + "/");
  assert.equal(index.status, 200);
  assert.equal(index.headers.get("cache-control"), "no-cache");
  assert.match(index.headers.get("content-security-policy"), /script-src 'self' 'wasm-unsafe-eval'/);
  const html = await index.text();
  const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)[1];
  const js = await fetch(base + asset);
  assert.equal(js.headers.get("cache-control"), "public, max-age=31536000, immutable");
  const manifest = await fetch(base + "/manifest.webmanifest");
  assert.equal(manifest.headers.get("content-type"), "application/manifest+json");
  assert.equal((await manifest.json()).display, "standalone");
  assert.equal((await fetch(base + "/nothing-here.js")).status, 404);
  assert.equal((await fetch(base + "/api/v1/nothing")).status, 404);
});

test("an auditor signs in and sees their audits, in English and in Hindi, online and offline", async () => {
  for (const [width, height] of [[1280, 800], [800, 1280]]) {
    const context = await browser.newContext({ viewport: { width, height } });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(base + "/");
    await page.getByRole("heading", { name: en["signin.heading"] }).waitFor();
    await page.screenshot({ path: path.join(shots, `signin-en-${width}x${height}.png`) });

    // A wrong password is named as such, and nothing is kept.
    await page.getByLabel(en["signin.username"]).fill("k.iyer");
    await page.getByLabel(en["signin.password"]).fill("not-the-password");
    await page.getByRole("button", { name: en["signin.submit"] }).click();
    await page.getByRole("alert").filter({ hasText: en["signin.failed"] }).waitFor();

    await signIn(page, "k.iyer");
    // K. Iyer leads audits 001 and 003 of the demo.
    const cards = page.locator("li.card[data-audit] h3");
    await cards.first().waitFor();
    assert.deepEqual(
      (await cards.allTextContents()).sort(),
      ["IA/DEMO-I/2025-26/001", "IA/DEMO-I/2025-26/003"],
    );
    const text = await page.locator("main").innerText();
    assert.match(text, /13-01-2026/, "dates as DD-MM-YYYY");
    assert.match(await page.locator("footer").innerText(), /\d+\.\d+\.\d+/, "the wasm rules engine runs");
    await page.screenshot({ path: path.join(shots, `audits-en-${width}x${height}.png`) });

    // Hindi: every string of the screen changes, dates stay DD-MM-YYYY.
    await page.getByRole("button", { name: en["lang.switch_label"] }).click();
    await page.getByRole("heading", { name: hi["audits.heading"] }).waitFor();
    const shown = await page.locator("body").innerText();
    for (const key of ["app.title", "audits.heading", "audits.lead", "signout"]) {
      assert.ok(shown.includes(hi[key]), `${key} in Hindi`);
      assert.ok(!shown.includes(en[key]), `${key} still in English`);
    }
    assert.match(shown, /13-01-2026/);
    await page.screenshot({ path: path.join(shots, `audits-hi-${width}x${height}.png`) });

    // The language is remembered; offline, the tablet says so and keeps what it holds.
    await page.reload();
    await page.getByRole("heading", { name: hi["audits.heading"] }).waitFor();
    await context.setOffline(true);
    await page.getByRole("status").filter({ hasText: hi["state.offline"] }).waitFor();
    assert.equal(await page.locator("li.card[data-audit]").count(), 2);
    await page.getByRole("button", { name: hi["lang.switch_label"] }).click();
    await context.setOffline(false);
    assert.deepEqual(errors, [], "no script error on the page");
    const noScroll = await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth);
    assert.ok(noScroll, "no horizontal scroll");
    await context.close();
  }
});

test("the audits come to the tablet by sync, and after the first visit the app starts with no network", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await signIn(page, "k.iyer");
  await page.getByRole("status").filter({ hasText: en["state.saved_server"] }).waitFor();
  // The demo's audit 003 is in review and 001 closed: the tablet reads
  // their states from the documents sync brought, through the wasm rules.
  const card = (number) => page.locator("li.card", { hasText: number }).locator(".audit-state");
  await card("IA/DEMO-I/2025-26/003").filter({ hasText: en["audit.state.in_review"] }).waitFor();
  await card("IA/DEMO-I/2025-26/001").filter({ hasText: en["audit.state.closed"] }).waitFor();
  // The NCs of his audits came with them, and are listed too.
  const ncs = await page.locator("li.card[data-nc]").count();
  assert.ok(ncs > 0, "no NC listed");
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
  });
  await page.screenshot({ path: path.join(shots, "audits-synced-en-1280x800.png") });

  // No network at all: the page, the wasm and the documents come from the tablet.
  await context.setOffline(true);
  await page.reload();
  await page.getByRole("heading", { name: en["audits.heading"] }).waitFor();
  await page.getByRole("status").filter({ hasText: en["state.offline"] }).waitFor();
  await card("IA/DEMO-I/2025-26/003").filter({ hasText: en["audit.state.in_review"] }).waitFor();
  assert.equal(await page.locator("li.card[data-audit]").count(), 2);
  assert.equal(await page.locator("li.card[data-nc]").count(), ncs, "the same NCs offline");
  await page.screenshot({ path: path.join(shots, "audits-offline-en-1280x800.png") });

  // The network back: the tablet connects again by itself.
  await context.setOffline(false);
  await page.getByRole("status").filter({ hasText: en["state.saved_server"] }).waitFor();
  assert.deepEqual(errors, [], "no script error on the page");
  await context.close();
});

test("an auditor opens an audit on its checklist, grouped by clause, with the answers given at the same time side by side", async () => {
  for (const [width, height, language] of [[1280, 800, "en"], [800, 1280, "hi"]]) {
    const words = language === "en" ? en : hi;
    const context = await browser.newContext({ viewport: { width, height } });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await signIn(page, "k.iyer");
    const card = page.locator("li.card", { hasText: "IA/DEMO-I/2025-26/003" });
    await card.locator(".audit-state").filter({ hasText: en["audit.state.in_review"] }).waitFor();
    if (language === "hi") await page.getByRole("button", { name: en["lang.switch_label"] }).click();
    await card.getByRole("link").click();
    await page.getByRole("heading", { name: "IA/DEMO-I/2025-26/003" }).waitFor();
    // In review, the checklist says it is locked, and why.
    await page.getByRole("note").filter({ hasText: words["audit.locked_review"] }).waitFor();
    // The demo's contest: S. Khan and K. Iyer answered one item at the same time.
    const item = page.locator('li.item[data-key="sd.interim_reply@P04"]');
    const contest = item.getByRole("group", { name: words["audit.contested"] });
    await contest.waitFor();
    const values = await contest.locator(".value").allInnerTexts();
    assert.equal(values.length, 2, values.join(" | "));
    assert.ok(values.some((v) => v.includes("k.iyer")) && values.some((v) => v.includes("s.khan")), values.join(" | "));
    // Grouped by clause, every item of the pinned version's checklist shown.
    const clauses = await page.locator("section.clause h3").allInnerTexts();
    const heading = words["audit.clause"].replace("{clause}", "3.2.1");
    assert.ok(clauses.some((c) => c.startsWith(`${heading} `)), clauses.join(" | "));
    assert.ok((await page.locator("li.item").count()) > 20);
    await item.scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(shots, `checklist-${language}-${width}x${height}.png`) });
    await page.getByRole("link", { name: words["audit.back"] }).click();
    await page.getByRole("heading", { name: words["audits.heading"] }).waitFor();
    assert.deepEqual(errors, [], "no script error on the page");
    await context.close();
  }
});

test("a phone 360 px wide shows each role's screens with no horizontal scroll, a two-row header and 44 px touch targets", async () => {
  const screens = [
    // The auditor's audits, then a checklist.
    ["s.khan", "audits", async () => {}],
    [
      "s.khan",
      "checklist",
      async (page) => {
        await page.getByRole("link", { name: en["audit.open"].replace("{number}", "IA/DEMO-I/2025-26/003") }).click();
        await page.locator("li.item[data-key]").first().waitFor();
      },
    ],
    // The nodal officer's dashboard, with its table of units.
    ["a.rao", "dashboard", (page) => page.locator("#units").waitFor({ timeout: 20_000 })],
    // The process owner's NC, with its forms.
    [
      "ac.div2",
      "nc",
      async (page) => {
        await page.locator("li.card[data-nc]").first().getByRole("link").click();
        await page.locator(".audit-state").first().waitFor();
      },
    ],
  ];
  for (const [user, name, go] of screens) {
    // A tablet of its own for each screen (a signed-in tablet opens on its user's home).
    const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
    const page = await context.newPage();
    await signIn(page, user);
    await go(page);
    const noScroll = await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth);
    assert.ok(noScroll, `no horizontal scroll at 360 px on ${name}`);
    const header = await page.locator("header.bar").boundingBox();
    assert.ok(header.height <= 110, `the header is ${header.height} px high on ${name}: two rows at most`);
    for (const button of await page.getByRole("button").all()) {
      if (!(await button.isVisible())) continue;
      const box = await button.boundingBox();
      assert.ok(box.height >= 44, `a button ${box.height} px high on ${name}`);
    }
    await page.screenshot({ path: path.join(shots, `${name}-en-360x740.png`), fullPage: name !== "checklist" });
    await context.close();
  }
});
