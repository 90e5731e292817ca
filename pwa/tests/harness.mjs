// What the browser suites share: a real `sqm serve --demo` serving the
// client's build on a free port, Debian's Chromium driven by playwright-core,
// the catalogues, and the steps every user takes (signing in). `cargo xtask
// test` sets SQM_BIN, SQM_WEB_DIR, SQM_CHROMIUM and SQM_SCREENSHOTS.
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

export const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the browser tests with \`cargo xtask test\``);
  return value;
};

export const en = JSON.parse(readFileSync(new URL("../src/i18n/en.json", import.meta.url), "utf8"));
export const hi = JSON.parse(readFileSync(new URL("../src/i18n/hi.json", import.meta.url), "utf8"));
export const shots = env("SQM_SCREENSHOTS");
mkdirSync(shots, { recursive: true });

let server;
let dataDir;
/** The server's address, e.g. http://127.0.0.1:40123, once `before` ran. */
export let base;
/** The browser, once `before` ran. */
export let browser;
/** What `sqm serve --demo` printed so far (the address, then the demo logins). */
export let printed = "";

/** Starts `sqm serve --demo` on a free port of 127.0.0.1 and waits for its address. */
function startServer() {
  dataDir = mkdtempSync(path.join(tmpdir(), "sqm-browser-"));
  const child = spawn(
    env("SQM_BIN"),
    ["--data-dir", dataDir, "--db", `sqlite://${dataDir}/sqm.db`, "serve", "--demo",
      "--listen", "127.0.0.1:0", "--web", env("SQM_WEB_DIR")],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  return new Promise((resolve, reject) => {
    child.stdout.on("data", (chunk) => {
      printed += chunk;
      const m = /serving at (http:\/\/[^/\s]+)\//.exec(printed);
      if (m) resolve([child, m[1]]);
    });
    child.on("exit", (code) => reject(new Error(`sqm serve ended (${code}): ${printed}`)));
  });
}

before(async () => {
  [server, base] = await startServer();
  browser = await chromium.launch({
    executablePath: env("SQM_CHROMIUM"),
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** Signs in on a fresh page and waits for the list of audits. */
export async function signIn(page, user) {
  await page.goto(base + "/");
  await page.getByLabel(en["signin.username"]).fill(user);
  await page.getByLabel(en["signin.password"]).fill("sevottam-demo");
  await page.getByRole("button", { name: en["signin.submit"] }).click();
  await page.getByRole("heading", { name: en["audits.heading"] }).waitFor();
}

/** The database file of the server (SQLite), for checking what it holds. */
export function database() {
  return path.join(dataDir, "sqm.db");
}

/** A demo user's access token, for the API. */
export async function token(user) {
  const res = await fetch(base + "/api/v1/auth/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: user, password: "sevottam-demo" }),
  });
  if (!res.ok) throw new Error(`${user} could not sign in: ${res.status}`);
  return (await res.json()).access_token;
}

/** The nodal officer A. Rao puts an audit (of P03 and P04 unless told) on the demo's programme. */
export async function planAudit(number, lead = "k.iyer", members = ["s.khan"], scope = ["P03", "P04"]) {
  const res = await fetch(base + "/api/v1/admin/units/DEMO-I/audits", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${await token("a.rao")}` },
    body: JSON.stringify({
      number,
      scope,
      planned_from: "2026-02-02",
      planned_to: "2026-02-03",
      template_version: 2,
      lead,
      members,
    }),
  });
  if (res.status !== 201) throw new Error(`planning ${number}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** A page in a new browser context, collecting script errors in `errors`. */
export async function open(viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  return { context, page, errors };
}

/** One value from the server's SQLite database. */
export function sql(query) {
  return execFileSync("sqlite3", [database(), query], { encoding: "utf8" }).trim();
}

export const status = (page) => page.locator("header [role=status]");

/** The lead opens a planned audit on their tablet and starts it, then waits for the server to hold it. */
export async function beginAndStart(page, number) {
  const card = page.locator("li.card", { hasText: number });
  await card.getByRole("button", { name: en["audits.begin"] }).click();
  await page.getByRole("heading", { name: number }).waitFor();
  await page.getByRole("button", { name: en["move.start"] }).click();
  await page.locator(".audit-state", { hasText: en["audit.state.in_progress"] }).waitFor();
  await status(page).filter({ hasText: en["state.saved_server"] }).waitFor();
}

/** Taps an answer of an item and waits until the item says it is on the tablet. */
export async function answer(page, key, words) {
  const item = page.locator(`li.item[data-key="${key}"]`);
  await item.getByRole("button", { name: words, exact: true }).click();
  await item.getByRole("status").filter({ hasText: en["item.saved"] }).waitFor();
  assert.equal(await item.getByRole("button", { name: words, exact: true }).getAttribute("aria-pressed"), "true");
}


/**
 * A test photo as a camera would give it: a PNG of `width` × `height` drawn
 * in the page (stripes and a label, so that it has content to compress).
 */
export async function photo(page, label, width = 2400, height = 1800) {
  const base64 = await page.evaluate(
    ([label, width, height]) => {
      const c = document.createElement("canvas");
      c.width = width;
      c.height = height;
      const g = c.getContext("2d");
      for (let x = 0; x < width; x += 100) {
        g.fillStyle = `hsl(${(x / width) * 360} 60% 60%)`;
        g.fillRect(x, 0, 100, height);
      }
      g.fillStyle = "#000";
      g.font = "120px sans-serif";
      g.fillText(label, 100, height / 2);
      return c.toDataURL("image/png").split(",")[1];
    },
    [label, width, height],
  );
  return { name: `${label}.png`, mimeType: "image/png", buffer: Buffer.from(base64, "base64") };
}

/**
 * Waits (up to 10 s) until the tablet keeps the screen of `user`'s audit
 * `id` with `answers` answers: the screen a cold start draws before the wasm
 * is ready.
 */
export async function screenKept(page, user, id, answers) {
  const kept = () =>
    page.evaluate(
      ([key, answers]) =>
        new Promise((resolve) => {
          const req = indexedDB.open("sqm-field-audit");
          req.onerror = () => resolve(false);
          req.onsuccess = () => {
            const get = req.result.transaction("screens").objectStore("screens").get(key);
            get.onerror = () => resolve(false);
            get.onsuccess = () => {
              req.result.close();
              resolve(Boolean(get.result) && Object.keys(JSON.parse(get.result.view).responses).length === answers);
            };
          };
        }),
      [`${user}/${id}`, answers],
    );
  for (let tries = 0; !(await kept()); tries++) {
    if (tries === 100) throw new Error(`the screen of ${id} with ${answers} answers was not kept`);
    await page.waitForTimeout(100);
  }
}

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
export async function violations(page) {
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
export async function bothLanguages(page, name, ready) {
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
