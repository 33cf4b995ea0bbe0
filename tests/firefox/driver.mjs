// Drives Debian's firefox-esr for tests/test_web_firefox.py: puppeteer-core over WebDriver BiDi
// (Playwright's own Firefox build cannot be downloaded here). One JSON command per stdin line,
// one JSON reply per stdout line: {"id", "ok": true, "value"} or {"id", "ok": false, "error"}.
//
//   {"op": "launch", "name": "worker", "prefs": {...}}   a Firefox of its own (its own profile)
//   {"op": "init", "name", "script"}                       run in every new document (before the app)
//   {"op": "goto", "name", "url"} · {"op": "fill", "name", "selector", "text"} · {"op": "click", "name", "selector"}
//   {"op": "evaluate", "name", "expression"}               the expression's value (promises awaited)
//   {"op": "screenshot", "name", "path"} · {"op": "close"}
import { createInterface } from "node:readline";
import puppeteer from "puppeteer-core";

const FIREFOX = process.env.FIREFOX || "/usr/bin/firefox-esr";
const browsers = new Map();
const pages = new Map();

const ops = {
  async launch({ name, prefs }) {
    const browser = await puppeteer.launch({
      browser: "firefox",
      executablePath: FIREFOX,
      headless: true,
      extraPrefsFirefox: prefs ?? {},
    });
    browsers.set(name, browser);
    const page = await browser.newPage();
    page.setDefaultTimeout(20000);
    pages.set(name, page);
    return (await browser.version());
  },
  async init({ name, script }) {
    await page(name).evaluateOnNewDocument(script);
  },
  async goto({ name, url }) {
    await page(name).goto(url);
  },
  async fill({ name, selector, text }) {
    await page(name).locator(selector).fill(text);
  },
  async click({ name, selector }) {
    await page(name).locator(selector).click();
  },
  async evaluate({ name, expression }) {
    return await page(name).evaluate(expression);
  },
  async screenshot({ name, path }) {
    await page(name).screenshot({ path, fullPage: true });
  },
  async close() {
    for (const browser of browsers.values()) await browser.close();
    browsers.clear();
    pages.clear();
  },
};

function page(name) {
  const p = pages.get(name);
  if (!p) throw new Error(`no Firefox named ${name}`);
  return p;
}

const reply = (message) => process.stdout.write(JSON.stringify(message) + "\n");

// Commands run one after the other, as they arrive.
let queue = Promise.resolve();
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const command = JSON.parse(line);
  queue = queue.then(async () => {
    try {
      const value = await ops[command.op](command);
      reply({ id: command.id, ok: true, value: value ?? null });
    } catch (error) {
      reply({ id: command.id, ok: false, error: String(error?.stack ?? error) });
    }
  });
});
lines.on("close", () => {
  queue.then(() => ops.close()).finally(() => process.exit(0));
});
