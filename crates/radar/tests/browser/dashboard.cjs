// Drives radar's dashboard in a real browser (Debian's chromium through
// npm's playwright-core), as `radar::it dashboard::…` asks:
//   node dashboard.cjs BASE_URL API_KEY SCREENSHOT_DIR CHROMIUM
// Every page loads with no console error; an alert appears in the live
// feed after an event is posted; marking it stores a label; the form
// scores an event; a CSV goes up and comes back scored; bad CSV is named
// by row and column. Prints a JSON summary (first paint per page).
"use strict";
const { chromium } = require("playwright-core");
const fs = require("fs");
const path = require("path");

const [base, key, shots, executablePath] = process.argv.slice(2);

function check(cond, message) {
  if (!cond) throw new Error(message);
}

async function api(p, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + key }, options.headers || {});
  const r = await fetch(base + p, Object.assign({}, options, { headers }));
  return { status: r.status, body: await r.json() };
}

(async () => {
  const browser = await chromium.launch({
    executablePath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  const summary = { first_paint_ms: {}, pages: [] };
  const problems = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const page = await context.newPage();
    page.on("console", (m) => {
      // A 401 before the key is given is the page saying so, not a fault.
      if (m.type() === "error" && !/401/.test(m.text())) problems.push("console: " + m.text());
    });
    page.on("pageerror", (e) => problems.push("page error: " + e.message));

    const visit = async (hash, ready) => {
      // A full load of each page (a query string, not only a new hash),
      // so each has its own first paint.
      await page.goto(base + "/?page=" + hash.slice(1) + hash, { waitUntil: "load" });
      await page.waitForFunction(ready, null, { timeout: 20000 });
      const shown = await page.evaluate(() => performance.now());
      const paint = await page.evaluate(
        () =>
          new Promise((done) => {
            new PerformanceObserver((list) => {
              const p = list.getEntries().find((e) => e.name === "first-contentful-paint") || list.getEntries()[0];
              if (p) done(p.startTime);
            }).observe({ type: "paint", buffered: true });
            setTimeout(() => done(null), 3000);
          })
      );
      const name = hash.slice(1);
      summary.first_paint_ms[name] = paint;
      // When the page's data was on screen (from navigation start).
      summary.data_shown_ms = Object.assign(summary.data_shown_ms || {}, { [name]: Math.round(shown) });
      summary.pages.push(name);
      await page.screenshot({ path: path.join(shots, name + ".png"), fullPage: true });
    };

    // The key, as a person gives it.
    await page.goto(base + "/#overview");
    await page.fill("#key", key);
    await page.click("#key-form button");
    await visit("#overview", () => /v\d+/.test(document.querySelector("#m-model").textContent));

    // An event the served model calls an anomaly (asked through /score),
    // then sent for real: the live feed must show its alert.
    const entity = "card-dashboard-" + Date.now();
    const event = {
      event_id: "dash-" + Date.now(),
      ts: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      card_id: entity,
      amount: 48000.0,
      merchant_category: "digital_goods",
      lat: -54.8,
      lon: -68.3,
      device: "dev-unknown-dashboard",
    };
    const scored = await api("/v1/streams/transactions/score", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(event),
    });
    check(scored.status === 200 && scored.body.results[0].anomaly, "the probe event is not an anomaly: " + JSON.stringify(scored.body));
    await visit("#alerts", () => document.querySelectorAll("#alerts tr").length > 0);
    const sent = await api("/v1/streams/transactions/events", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(event),
    });
    check(sent.status === 202, "ingest: " + JSON.stringify(sent.body));
    const row = page.locator("#alerts tr", { hasText: entity });
    await row.first().waitFor({ timeout: 30000 });
    await row.first().locator("button.fraud").click();
    await page.locator("#alerts tr", { hasText: entity }).locator("button.fraud", { hasText: "✓" }).first().waitFor({ timeout: 30000 });
    const labels = await api("/v1/labels?event_id=" + encodeURIComponent(event.event_id));
    check(labels.body.labels.some((l) => l.label === "fraud" && l.source === "dashboard"), "no label stored: " + JSON.stringify(labels.body));
    await row.first().locator("td").first().click();
    await page.locator("#alert-detail svg").first().waitFor();
    await page.screenshot({ path: path.join(shots, "alert-detail.png"), fullPage: true });

    // Explore: the recent events drawn, the alert posted above among them.
    await visit("#explore", () => document.querySelectorAll("#score-hist rect").length > 0 && document.querySelectorAll("#scatter circle.alert").length > 0);
    await page.selectOption("#dist-feature", { index: 1 });
    await page.waitForFunction(() => document.querySelectorAll("#dist polyline.reference").length === 1);

    // The form built from the stream's declaration.
    await visit("#try", () => document.querySelectorAll("#try-fields input").length > 3);
    for (const [name, value] of Object.entries(event)) {
      if (name !== "ts") await page.fill(`#try-fields input[name="${name}"]`, String(value));
    }
    await page.click("#try-form button[type=submit]");
    await page.locator("#try-result", { hasText: "threshold" }).waitFor({ timeout: 10000 });
    await page.screenshot({ path: path.join(shots, "try-scored.png"), fullPage: true });

    // CSV in, scored CSV out.
    const csv = path.join(shots, "upload.csv");
    fs.writeFileSync(
      csv,
      "event_id,ts,card_id,amount,merchant_category,lat,lon,device\n" +
        `c1,${event.ts},card-1,12.5,grocery,52.5,13.4,dev-1\n` +
        `c2,${event.ts},card-2,48000,digital_goods,-54.8,-68.3,dev-x\n` +
        `"c,3",${event.ts},card-3,30,restaurant,48.8,2.3,dev-3\n`
    );
    await page.setInputFiles("#csv", csv);
    await page.locator("#csv-download:not([hidden])").waitFor({ timeout: 10000 });
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#csv-download")]);
    const out = fs.readFileSync(await download.path(), "utf8").trim().split("\n");
    check(out.length === 4, "the scored CSV has " + out.length + " lines");
    check(out[0].endsWith("score,decision,top_features,error"), "header: " + out[0]);
    check(out[3].startsWith('"c,3"'), "quoted cells survive: " + out[3]);
    check(/,anomaly,/.test(out[2]), "the extreme row is an anomaly: " + out[2]);
    summary.csv_rows = out.length - 1;
    const bad = path.join(shots, "bad.csv");
    fs.writeFileSync(bad, "event_id,ts,card_id,amount\nb1,2026-01-01T00:00:00Z,card-1,twelve\n");
    await page.setInputFiles("#csv", bad);
    await page.locator("#csv-error:not([hidden])").waitFor();
    const message = await page.textContent("#csv-error");
    check(/row 2, column 4 \(amount\)/.test(message), "bad CSV message: " + message);
    summary.bad_csv_message = message;

    await visit("#models", () => document.querySelectorAll("#models tr").length > 0 && document.querySelectorAll("#confusion tr").length > 0);
    summary.holdout_pr_points = await page.evaluate(() => document.querySelectorAll("#pr-curve polyline").length);

    // Promote and roll back move the champion (an admin's action, confirmed).
    page.on("dialog", (d) => d.accept());
    const champion = async () => {
      const { body } = await api("/v1/models");
      return body.models.find((m) => (m.aliases || []).includes("champion")).version;
    };
    const before = await champion();
    const other = page.locator("#models tr button.promote").first();
    const target = Number(await other.locator("xpath=ancestor::tr").getAttribute("data-version"));
    await other.click();
    await page.locator(`#models tr[data-version="${target}"] button.rollback`).waitFor({ timeout: 10000 });
    check((await champion()) === target, "promote did not move the champion to v" + target);
    await page.locator(`#models tr[data-version="${target}"] button.rollback`).click();
    await page.locator(`#models tr[data-version="${before}"] button.rollback`).waitFor({ timeout: 10000 });
    check((await champion()) === before, "rollback did not move the champion back to v" + before);
    summary.champion_moves = [before, target, before];
    await page.screenshot({ path: path.join(shots, "models-after-rollback.png"), fullPage: true });

    // A phone's screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(base + "/#alerts");
    await page.waitForFunction(() => document.querySelectorAll("#alerts tr").length > 0);
    await page.screenshot({ path: path.join(shots, "alerts-phone.png"), fullPage: true });
  } catch (e) {
    problems.push(e.message);
    // What the page showed when it went wrong.
    try {
      const page = browser.contexts()[0].pages()[0];
      await page.screenshot({ path: path.join(shots, "failure.png"), fullPage: true });
      problems.push("at " + page.url() + ": " + (await page.evaluate(() => document.body.innerText)).slice(0, 1500));
    } catch (_) {}
  } finally {
    await browser.close();
  }
  summary.problems = problems;
  console.log(JSON.stringify(summary));
  process.exit(problems.length ? 1 : 0);
})();
