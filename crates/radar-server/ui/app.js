// radar's dashboard. Plain JavaScript, no build step and no framework:
// every figure comes from the public API (/openapi.json, /metrics,
// /readyz, /v1/...) with the API key the person gives, kept in this
// browser's localStorage. Charts are hand-written SVG.
"use strict";

const state = {
  key: localStorage.getItem("radar-key") || "",
  stream: null,
  // Every stream this server serves, and each one's event schema.
  streams: [],
  schemas: {},
  eventSchema: null,
  samples: [], // the last two /metrics readings: {t, events, alerts, scored, lag, p99}
  alertsOffset: 0,
  // Verdicts given in this page, by the alert's position, so the live
  // feed's refresh keeps showing them.
  verdicts: new Map(),
  alertsPage: 50,
  lastAlertIds: new Set(),
};

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
};

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.key) headers["Authorization"] = "Bearer " + state.key;
  const r = await fetch(path, Object.assign({}, options, { headers }));
  const type = r.headers.get("content-type") || "";
  const body = type.includes("json") ? await r.json() : await r.text();
  if (!r.ok && !(body && typeof body === "object" && body.results)) {
    const message = body && body.error ? body.error : r.status + " " + r.statusText;
    const e = new Error(r.status === 401 ? "This needs an API key (401): " + message : message);
    e.status = r.status;
    throw e;
  }
  return body;
}

// --- routing -------------------------------------------------------------

const pages = { overview: showOverview, alerts: showAlerts, explore: showExplore, try: showTry, models: showModels };

function route() {
  const name = (location.hash || "#overview").slice(1);
  const page = pages[name] ? name : "overview";
  for (const s of document.querySelectorAll("[data-page]")) s.hidden = s.dataset.page !== page;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === "#" + page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  pages[page]().catch(report);
}

function report(e) {
  // Said in the console too: a page that failed to draw must not look
  // merely empty.
  console.error(e);
  const status = $("#ready");
  if (status) {
    status.textContent = e.message;
    status.classList.add("bad");
  }
}

// --- overview ------------------------------------------------------------

// The figures of the chosen stream (every series carries its stream).
function parseMetrics(text) {
  const mine = `stream="${state.stream}"`;
  const lines = text.split("\n").filter((l) => l.includes(mine));
  const sum = (name) =>
    lines
      .filter((l) => l.startsWith(name) && (l[name.length] === "{" || l[name.length] === " "))
      .reduce((s, l) => s + (parseFloat(l.slice(l.lastIndexOf(" ") + 1)) || 0), 0);
  const buckets = lines
    .filter((l) => l.startsWith("radar_decision_latency_seconds_bucket"))
    .map((l) => {
      const le = l.match(/le="([^"]+)"/)[1];
      return [le === "+Inf" ? Infinity : parseFloat(le), parseFloat(l.slice(l.lastIndexOf(" ") + 1))];
    })
    .sort((a, b) => a[0] - b[0]);
  const dead = {};
  for (const l of lines) {
    const m = l.match(/^radar_dead_letters_total\{[^}]*reason="([^"]+)"[^}]*\} (\S+)/);
    if (m) dead[m[1]] = (dead[m[1]] || 0) + parseFloat(m[2]);
  }
  return {
    events: sum("radar_events_in_total"),
    scored: sum("radar_scored_total"),
    alerts: sum("radar_alerts_total"),
    lag: sum("radar_consumer_lag"),
    buckets,
    dead,
  };
}

function quantileFromBuckets(before, now, q) {
  if (!before) return null;
  const delta = now.map(([le, n], i) => [le, n - ((before[i] && before[i][1]) || 0)]);
  const total = delta.length ? delta[delta.length - 1][1] : 0;
  if (total <= 0) return null;
  const hit = delta.find(([, n]) => n >= q * total);
  return hit ? hit[0] : null;
}

function spark(svg, values) {
  svg.replaceChildren();
  const v = values.filter((x) => x != null && isFinite(x));
  if (v.length < 2) return;
  const max = Math.max(...v, 1e-9);
  const step = 200 / (values.length - 1);
  const points = values
    .map((x, i) => (x == null || !isFinite(x) ? null : `${(i * step).toFixed(1)},${(38 - (x / max) * 36).toFixed(1)}`))
    .filter(Boolean)
    .join(" ");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points);
  svg.append(line);
}

const fmt = (x, digits = 0) =>
  x == null || !isFinite(x) ? "–" : x.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits });

let overviewTimer = null;

async function showOverview() {
  clearInterval(overviewTimer);
  await sampleOverview();
  // Rates need two samples: the second comes after a second.
  setTimeout(() => sampleOverview().catch(report), 1000);
  overviewTimer = setInterval(() => {
    if (!$("#page-overview").hidden) sampleOverview().catch(report);
  }, 2000);
}

async function sampleOverview() {
  await loadContract();
  const [text, ready] = await Promise.all([
    api("/metrics"),
    fetch("/readyz").then((r) => r.json()),
  ]);
  const m = parseMetrics(text);
  const now = performance.now() / 1000;
  const prev = state.samples[state.samples.length - 1];
  const s = { t: now, ...m };
  if (prev) {
    const dt = Math.max(now - prev.t, 1e-3);
    s.eventsPerSecond = (m.events - prev.events) / dt;
    s.alertsPerSecond = (m.alerts - prev.alerts) / dt;
    const scored = m.scored - prev.scored;
    s.alertRate = scored > 0 ? (m.alerts - prev.alerts) / scored : null;
    s.p99 = quantileFromBuckets(prev.buckets, m.buckets, 0.99);
  }
  state.samples.push(s);
  // The figures are the last interval's; the history is the server's.
  if (state.samples.length > 2) state.samples.shift();
  const last = state.samples.slice(-1)[0];
  $("#m-events").textContent = fmt(last.eventsPerSecond);
  $("#m-alerts").textContent = fmt(last.alertsPerSecond, 1);
  $("#m-rate").textContent = last.alertRate == null ? "–" : fmt(100 * last.alertRate, 2) + " %";
  $("#m-latency").textContent = last.p99 == null ? "–" : last.p99 === Infinity ? "> 10 s" : fmt(last.p99 * 1000, 1) + " ms";
  $("#m-lag").textContent = fmt(m.lag);
  // The sparklines: the server's last hour (a sample every 5 s since it
  // started), so they are full the moment the page opens.
  await loadContract();
  const { samples } = await api(`/v1/streams/${state.stream}/history`);
  spark($("#s-events"), samples.map((x) => x.events_per_second));
  spark($("#s-alerts"), samples.map((x) => x.alerts_per_second));
  spark($("#s-rate"), samples.map((x) => x.alert_rate));
  spark($("#s-latency"), samples.map((x) => x.decision_p99_ms));
  spark($("#s-lag"), samples.map((x) => x.lag));
  const status = $("#ready");
  status.classList.toggle("bad", ready.status !== "ready");
  status.textContent = ready.status === "ready" ? "Ready" : ready.status;
  // With several streams, each one's model is said under `streams`.
  const mine = (ready.streams && ready.streams[state.stream]) || ready;
  $("#m-model").textContent = mine.model ? `${mine.model} v${mine.model_version}` : "none yet";
  $("#m-warm").textContent = mine.warming_up ? "warming up" : "";
  const rows = Object.entries(m.dead).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  $("#dead-letters").replaceChildren(
    ...(rows.length
      ? rows.map(([reason, n]) => el("tr", {}, el("td", {}, reason), el("td", { class: "num" }, fmt(n))))
      : [el("tr", {}, el("td", { colspan: "2" }, "none"))])
  );
}

// --- alerts --------------------------------------------------------------

let alertsTimer = null;

async function showAlerts() {
  clearInterval(alertsTimer);
  await loadAlerts();
  alertsTimer = setInterval(() => {
    if (!$("#page-alerts").hidden && $("#live").checked && state.alertsOffset === 0) loadAlerts().catch(alertsError);
  }, 2000);
}

function alertsError(e) {
  const p = $("#alerts-error");
  p.textContent = e.message;
  p.hidden = false;
}

function alertQuery() {
  const f = new FormData($("#alert-filter"));
  const q = new URLSearchParams({ stream: state.stream, limit: state.alertsPage, offset: state.alertsOffset });
  for (const k of ["entity", "min_score", "since"]) {
    const v = (f.get(k) || "").trim();
    if (v) q.set(k, v);
  }
  return q;
}

const why = (a) =>
  (a.contributions || [])
    .slice(0, 3)
    .map((c) => `${c.feature} ${c.direction === "above" ? "↑" : c.direction === "below" ? "↓" : ""} ${fmt(c.value, 2)}`)
    .join(", ");

async function loadAlerts() {
  await loadContract();
  const body = await api("/v1/alerts?" + alertQuery());
  $("#alerts-error").hidden = true;
  const rows = body.alerts.map((a) => {
    const given = state.verdicts.get(a.position);
    const button = (verdict, text) =>
      el(
        "button",
        { type: "button", class: verdict, "data-event": a.event_id, onclick: (e) => label(e, a, verdict) },
        given === verdict ? "✓ " + text : text
      );
    const verdict = el("td", {}, button("fraud", "Fraud"), " ", button("legit", "Not fraud"));
    const tr = el(
      "tr",
      { class: "anomaly clickable", tabindex: "0", "data-position": a.position },
      el("td", {}, a.event_time),
      el("td", {}, a.entity || "–"),
      el("td", { class: "num score" }, fmt(a.score, 3)),
      el("td", { class: "num" }, fmt(a.threshold, 3)),
      el("td", {}, why(a)),
      verdict
    );
    const open = (e) => {
      if (e.target.tagName !== "BUTTON") showAlert(a).catch(alertsError);
    };
    tr.addEventListener("click", open);
    tr.addEventListener("keydown", (e) => e.key === "Enter" && open(e));
    return tr;
  });
  $("#alerts").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "6" }, "No alerts"))]));
  $("#page-info").textContent = `${state.alertsOffset + 1}–${state.alertsOffset + body.alerts.length}`;
  $("#newer").disabled = state.alertsOffset === 0;
  $("#older").disabled = body.alerts.length < state.alertsPage;
}

// Records a verdict. An alert can show up before capture has indexed
// its event (it does every few seconds): "unknown event" is retried for
// a while before it is said.
async function label(e, alert, verdict) {
  const button = e.target;
  const text = button.textContent.replace(/^✓ /, "");
  button.disabled = true;
  button.textContent = "saving…";
  try {
    // Capture indexes events every few seconds (5 by default): a verdict
    // on an alert younger than that waits for it rather than be refused.
    const wait = alert.decided_at_us / 1000 + 6000 - Date.now();
    if (wait > 0) await new Promise((ok) => setTimeout(ok, Math.min(wait, 6000)));
    for (let attempt = 0; ; attempt++) {
      const body = await api(`/v1/streams/${alert.stream}/labels`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ event_id: alert.event_id, label: verdict, source: "dashboard" }),
      });
      const r = body.results && body.results[0];
      if (r && (r.status === "accepted" || r.status === "duplicate")) {
        state.verdicts.set(alert.position, verdict);
        button.textContent = "✓ " + text;
        break;
      }
      if (!(r && r.status === "unknown_event") || attempt >= 20) throw new Error(r ? r.error : "the label was not recorded");
      await new Promise((ok) => setTimeout(ok, 1000));
    }
  } catch (err) {
    alertsError(err);
    button.textContent = text;
  } finally {
    button.disabled = false;
  }
}

async function showAlert(a) {
  const detail = $("#alert-detail");
  const history = a.entity
    ? (await api("/v1/alerts?" + new URLSearchParams({ stream: a.stream, entity: a.entity, limit: 100 }))).alerts
    : [];
  // Every recent scored event of the entity, alerts or not.
  const events = a.entity
    ? (await api(`/v1/streams/${state.stream}/recent?` + new URLSearchParams({ entity: a.entity, limit: 500 }))).events
    : [];
  detail.replaceChildren(
    el("h2", {}, `Alert on ${a.entity || "an event"} at ${a.event_time}`),
    el("p", {}, `Score ${fmt(a.score, 3)} against threshold ${fmt(a.threshold, 3)} (model ${a.model} v${a.model_version}); event ${a.event_id}, decided in ${fmt(a.latency_ms, 1)} ms.`),
    bars(a.contributions || []),
    el("h2", {}, `${a.entity || "The entity"}'s recent events (score over time; alerts in red)`),
    timeline(
      events.map((e) => ({ event_time_us: e.ts, score: e.score, alert: e.alert, event_time: new Date(e.ts / 1000).toISOString() })),
      a
    ),
    el("h2", {}, `${a.entity || "The entity"}'s alerts`),
    timeline(history, a)
  );
  detail.hidden = false;
}

// Horizontal bars of the features' shares of a score.
function bars(contributions) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const rows = contributions.slice(0, 8);
  svg.setAttribute("viewBox", `0 0 420 ${rows.length * 22 + 4}`);
  svg.setAttribute("class", "bars");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Feature contributions: " + rows.map((c) => `${c.feature} ${Math.round(c.share * 100)}%`).join(", "));
  const max = Math.max(...rows.map((c) => c.share), 1e-9);
  rows.forEach((c, i) => {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", 0);
    t.setAttribute("y", i * 22 + 15);
    t.textContent = `${c.feature} = ${fmt(c.value, 2)}`;
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", 200);
    r.setAttribute("y", i * 22 + 4);
    r.setAttribute("height", 14);
    r.setAttribute("width", Math.max(1, (c.share / max) * 200));
    r.setAttribute("class", c.direction === "below" ? "below" : "above");
    svg.append(t, r);
  });
  return svg;
}

// The entity's alerts on a time axis, the chosen one marked.
function timeline(alerts, chosen) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 600 60");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${alerts.length} alerts of this entity over time`);
  if (!alerts.length) return svg;
  const ts = alerts.map((a) => a.event_time_us);
  const lo = Math.min(...ts);
  const span = Math.max(Math.max(...ts) - lo, 1);
  const axis = document.createElementNS(ns, "line");
  Object.entries({ x1: 5, x2: 595, y1: 40, y2: 40, stroke: "currentColor", "stroke-opacity": 0.3 }).forEach(([k, v]) => axis.setAttribute(k, v));
  svg.append(axis);
  for (const a of alerts) {
    const c = document.createElementNS(ns, "circle");
    c.setAttribute("cx", 5 + ((a.event_time_us - lo) / span) * 590);
    c.setAttribute("cy", 40 - Math.min(30, a.score * 30));
    // The chosen alert (by its place in the log, or its event time among
    // the entity's events) large; alerts red.
    const chosenOne = a.position ? a.position === chosen.position : a.event_time_us === chosen.event_time_us;
    c.setAttribute("r", chosenOne ? 6 : 3.5);
    c.setAttribute("fill", chosenOne || a.alert ? "var(--alert)" : "var(--accent)");
    const title = document.createElementNS(ns, "title");
    title.textContent = `${a.event_time}: ${fmt(a.score, 3)}`;
    c.append(title);
    svg.append(c);
  }
  return svg;
}

// --- explore -------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
const svgEl = (tag, attrs) => {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};
let recent = null;

async function showExplore() {
  await loadContract();
  recent = await api(`/v1/streams/${state.stream}/recent?limit=5000`);
  const n = recent.events.length;
  const alerts = recent.events.filter((e) => e.alert).length;
  $("#explore-summary").textContent = n
    ? `The last ${n.toLocaleString()} scored events: ${alerts.toLocaleString()} alerts (${fmt((100 * alerts) / n, 2)} %), model ${recent.model} v${recent.model_version}.`
    : "No live event scored yet.";
  for (const [id, pick] of [["#scatter-x", 0], ["#scatter-y", 1], ["#dist-feature", 0]]) {
    const select = $(id);
    if (!select.options.length) {
      recent.columns.forEach((c, i) => select.append(el("option", { value: i }, c)));
      select.value = Math.min(pick, recent.columns.length - 1);
      select.addEventListener("change", drawExplore);
    }
  }
  drawExplore();
}

function drawExplore() {
  if (!recent) return;
  const ev = recent.events;
  // Score histogram, bins over the scores seen and the threshold.
  const scores = ev.map((e) => e.score);
  const t = recent.threshold;
  const lo = Math.min(...scores, t ?? Infinity), hi = Math.max(...scores, t ?? -Infinity);
  histogram($("#score-hist"), scores, lo, hi, (x) => t != null && x >= t, t);
  // Alert share per event-time bin.
  const rate = $("#rate-time");
  rate.replaceChildren();
  if (ev.length) {
    // Scoring order is not event-time order (late events): bin by the
    // span of times seen.
    // The central 98% of times, so one straggler does not squeeze the
    // rest into a bin (the rest are counted at the edges).
    const times = ev.map((e) => e.ts).sort((a, b) => a - b);
    const t0 = times[Math.floor(0.01 * (times.length - 1))];
    const t1 = Math.max(times[Math.ceil(0.99 * (times.length - 1))], t0 + 1);
    const bins = Array.from({ length: 30 }, () => [0, 0]);
    for (const e of ev) {
      const b = Math.max(0, Math.min(29, Math.floor(((e.ts - t0) / (t1 - t0)) * 30)));
      bins[b][0] += e.alert ? 1 : 0;
      bins[b][1] += 1;
    }
    const shares = bins.map(([a, n]) => (n ? a / n : null));
    const max = Math.max(...shares.filter((x) => x != null), 1e-9);
    const points = shares
      .map((s, i) => (s == null ? null : `${10 + i * (380 / 29)},${145 - (s / max) * 130}`))
      .filter(Boolean)
      .join(" ");
    rate.append(svgEl("polyline", { class: "rate", points }));
    const label = svgEl("text", { x: 10, y: 12 });
    label.textContent = `max ${fmt(100 * max, 1)} %`;
    rate.append(label);
  }
  // Any two features, alerts on top.
  const [x, y] = [Number($("#scatter-x").value), Number($("#scatter-y").value)];
  const scatter = $("#scatter");
  scatter.replaceChildren();
  const xs = ev.map((e) => e.features[x]), ys = ev.map((e) => e.features[y]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (v) => 10 + ((v - x0) / (x1 - x0 || 1)) * 380, sy = (v) => 250 - ((v - y0) / (y1 - y0 || 1)) * 240;
  for (const pass of [false, true]) {
    for (const e of ev) {
      if (e.alert !== pass) continue;
      scatter.append(svgEl("circle", { cx: sx(e.features[x]).toFixed(1), cy: sy(e.features[y]).toFixed(1), r: pass ? 2.6 : 1.6, class: pass ? "alert" : "normal" }));
    }
  }
  scatter.setAttribute("aria-label", `${recent.columns[y]} against ${recent.columns[x]} for ${ev.length} events`);
  // One feature live against the reference's percentiles.
  const f = Number($("#dist-feature").value);
  const values = ev.map((e) => e.features[f]);
  const ref = recent.reference_features[f] || [];
  const dlo = Math.min(...values, ...ref), dhi = Math.max(...values, ...ref);
  histogram($("#dist"), values, dlo, dhi, () => false, null, ref);
}

// Bars of `values` over [lo, hi]; bars where `over(x)` in red; a dashed
// line at `mark`; the reference's density (from its percentiles) as a line.
function histogram(svg, values, lo, hi, over, mark, reference) {
  svg.replaceChildren();
  if (!values.length || !isFinite(lo) || !isFinite(hi)) return;
  const bins = 40, span = hi - lo || 1;
  const counts = new Array(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.floor(((v - lo) / span) * bins))]++;
  const shares = counts.map((c) => c / values.length);
  let ref = null;
  if (reference && reference.length > 1) {
    // Each percentile step holds 1% of the training rows.
    ref = new Array(bins).fill(0);
    for (let i = 1; i < reference.length; i++) {
      const mid = (reference[i - 1] + reference[i]) / 2;
      ref[Math.min(bins - 1, Math.max(0, Math.floor(((mid - lo) / span) * bins)))] += 1 / (reference.length - 1);
    }
  }
  const max = Math.max(...shares, ...(ref || [0]), 1e-9);
  const w = 380 / bins;
  shares.forEach((s, i) => {
    const h = (s / max) * 130;
    svg.append(svgEl("rect", { x: 10 + i * w, y: 145 - h, width: Math.max(w - 1, 1), height: h, class: over(lo + (i + 0.5) * (span / bins)) ? "over" : "live" }));
  });
  if (ref) {
    const points = ref.map((s, i) => `${10 + (i + 0.5) * w},${145 - (s / max) * 130}`).join(" ");
    svg.append(svgEl("polyline", { class: "reference", points }));
  }
  if (mark != null) {
    const mx = 10 + ((mark - lo) / span) * 380;
    svg.append(svgEl("line", { class: "threshold", x1: mx, x2: mx, y1: 10, y2: 150 }));
  }
  const axis = svgEl("text", { x: 10, y: 158 });
  axis.textContent = `${fmt(lo, 3)} … ${fmt(hi, 3)}`;
  svg.append(axis);
  svg.setAttribute("aria-label", `Distribution of ${values.length} values from ${fmt(lo, 3)} to ${fmt(hi, 3)}`);
}

// --- try it --------------------------------------------------------------

async function loadContract() {
  if (state.eventSchema) return;
  const doc = await fetch("/openapi.json").then((r) => r.json());
  const param = doc.paths["/v1/streams/{stream}/score"].post.parameters.find((p) => p.name === "stream");
  state.streams = param.schema.enum;
  // One stream: its event is `Event`; several: `Event.<stream>` each.
  for (const name of state.streams) {
    state.schemas[name] = doc.components.schemas["Event." + name] || doc.components.schemas.Event;
  }
  const asked = new URLSearchParams(location.search).get("stream");
  chooseStream(state.streams.includes(asked) ? asked : state.streams[0]);
  const pick = $("#stream-pick");
  pick.replaceChildren(...state.streams.map((n) => el("option", { value: n }, n)));
  pick.value = state.stream;
  $("#stream-choice").hidden = state.streams.length < 2;
}

function chooseStream(name) {
  state.stream = name;
  state.eventSchema = state.schemas[name];
  state.samples = [];
  state.alertsOffset = 0;
  $("#stream-name").textContent = name;
}

// The JSON type a field takes, from its schema (first alternative).
function kindOf(schema) {
  const s = schema.anyOf ? schema.anyOf[0] : schema;
  if (s.anyOf) return kindOf(s);
  const t = Array.isArray(s.type) ? s.type[0] : s.type;
  return s.pattern ? "time" : t || "string";
}

async function showTry() {
  await loadContract();
  const fields = $("#try-fields");
  if (fields.children.length > 1) return;
  const props = state.eventSchema.properties;
  const required = new Set(state.eventSchema.required || []);
  for (const [name, schema] of Object.entries(props)) {
    const kind = kindOf(schema);
    const input = el("input", { name, "data-kind": kind, spellcheck: "false" });
    if (kind === "time") input.value = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    if (kind === "number" || kind === "integer") input.setAttribute("inputmode", "decimal");
    if (required.has(name)) input.required = true;
    fields.append(el("label", {}, name + (required.has(name) ? " *" : ""), input));
  }
}

function typed(kind, text, where) {
  if (text === "") return undefined;
  if (kind === "number" || kind === "integer") {
    const v = Number(text);
    if (!isFinite(v)) throw new Error(`${where}: \`${text}\` is not a number`);
    return v;
  }
  if (kind === "boolean") {
    if (/^(true|1)$/i.test(text)) return true;
    if (/^(false|0)$/i.test(text)) return false;
    throw new Error(`${where}: \`${text}\` is not true or false`);
  }
  return text;
}

$("#try-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const out = $("#try-result");
  try {
    const event = {};
    for (const input of $("#try-fields").querySelectorAll("input")) {
      const v = typed(input.dataset.kind, input.value.trim(), `field ${input.name}`);
      if (v !== undefined) event[input.name] = v;
    }
    const body = await api(`/v1/streams/${state.stream}/score`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(event),
    });
    const r = body.results[0];
    if (r.error) throw new Error(r.error);
    out.replaceChildren(
      el("p", { class: r.anomaly ? "big error" : "big" }, `${fmt(r.score, 3)} ${r.anomaly ? "— anomaly" : "— normal"}`),
      el("p", {}, `threshold ${fmt(r.threshold, 3)}, model ${body.model} v${body.model_version}`),
      bars(r.contributions)
    );
  } catch (err) {
    out.replaceChildren(el("p", { class: "error", role: "alert" }, err.message));
  }
});

// A small RFC 4180 reader: quoted cells, doubled quotes, CRLF.
function parseCsv(text) {
  const rows = [];
  let row = [], cell = "", quoted = false, line = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; }
      else if (c === '"') quoted = false;
      else { if (c === "\n") line++; cell += c; }
    } else if (c === '"' && cell === "") quoted = true;
    else if (c === ",") { row.push(cell); cell = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(cell); rows.push(row); row = []; cell = ""; line++;
    } else cell += c;
  }
  if (quoted) throw new Error(`line ${line}: a quoted cell is not closed`);
  if (cell !== "" || row.length) { row.push(cell); rows.push(row); }
  return rows.filter((r) => !(r.length === 1 && r[0] === ""));
}

const csvCell = (v) => {
  const s = v == null ? "" : String(v);
  return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
};

$("#csv").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  const error = $("#csv-error");
  error.hidden = true;
  $("#csv-download").hidden = true;
  if (!file) return;
  try {
    await loadContract();
    const rows = parseCsv(await file.text());
    if (rows.length < 2) throw new Error("the file needs a header row and at least one event");
    const header = rows[0].map((h) => h.trim());
    const props = state.eventSchema.properties;
    header.forEach((h, c) => {
      if (!props[h]) throw new Error(`row 1, column ${c + 1}: \`${h}\` is not a field of stream ${state.stream} (fields: ${Object.keys(props).join(", ")})`);
    });
    const events = rows.slice(1).map((r, i) => {
      if (r.length !== header.length) throw new Error(`row ${i + 2}: ${r.length} cells, the header has ${header.length}`);
      const event = {};
      r.forEach((cell, c) => {
        const v = typed(kindOf(props[header[c]]), cell.trim(), `row ${i + 2}, column ${c + 1} (${header[c]})`);
        if (v !== undefined) event[header[c]] = v;
      });
      return event;
    });
    const scored = [];
    for (let i = 0; i < events.length; i += 1000) {
      const body = await api(`/v1/streams/${state.stream}/score`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(events.slice(i, i + 1000)),
      });
      scored.push(...body.results);
    }
    const outHeader = [...header, "score", "decision", "top_features", "error"];
    const outRows = scored.map((r, i) => [
      ...rows[i + 1],
      r.score == null ? "" : r.score,
      r.error ? "" : r.anomaly ? "anomaly" : "normal",
      r.contributions ? r.contributions.slice(0, 3).map((c) => c.feature).join(" ") : "",
      r.error ? `row ${i + 2}: ${r.error}` : "",
    ]);
    const table = $("#csv-table");
    table.querySelector("thead").replaceChildren(el("tr", {}, ...outHeader.map((h) => el("th", {}, h))));
    table.querySelector("tbody").replaceChildren(
      ...outRows.slice(0, 500).map((r) => el("tr", { class: r[header.length + 1] === "anomaly" ? "anomaly" : "" }, ...r.map((v) => el("td", {}, v))))
    );
    table.hidden = false;
    const csv = [outHeader, ...outRows].map((r) => r.map(csvCell).join(",")).join("\n") + "\n";
    const link = $("#csv-download");
    link.href = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
    link.hidden = false;
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  }
});

// --- models --------------------------------------------------------------

async function showModels() {
  await loadContract();
  const [{ models }, drift] = await Promise.all([
    api("/v1/models"),
    api(`/v1/streams/${state.stream}/drift`).catch(() => null),
  ]);
  $("#models").replaceChildren(
    ...models.map((m) =>
      el(
        "tr",
        { "data-model": m.name, "data-version": m.version },
        el("td", {}, m.name),
        el("td", { class: "num" }, m.version),
        el(
          "td",
          {},
          (m.aliases || []).join(", "),
          " ",
          (m.aliases || []).includes("champion")
            ? el("button", { type: "button", class: "rollback", onclick: () => moveAlias(m, "rollback") }, "Roll back")
            : el("button", { type: "button", class: "promote", onclick: () => moveAlias(m, "promote") }, "Make champion")
        ),
        el("td", {}, new Date(m.created_at / 1000).toISOString().slice(0, 19).replace("T", " ")),
        el("td", {}, Object.entries(m.metrics || {}).filter(([, v]) => typeof v === "number").slice(0, 4).map(([k, v]) => `${k} ${fmt(v, 3)}`).join(", "))
      )
    )
  );
  holdout(models.find((m) => (m.aliases || []).includes("champion")) || models[0]);
  const names = [...new Set(models.map((m) => m.name))];
  const histories = await Promise.all(names.map((n) => api(`/v1/models/${encodeURIComponent(n)}`)));
  const moves = histories.flatMap((h) => h.aliases).sort((a, b) => b.at - a.at);
  const when = (us) => new Date(us / 1000).toISOString().slice(0, 19).replace("T", " ");
  const steps = histories.flatMap((h) => h.events).sort((a, b) => b.at - a.at).slice(0, 100);
  $("#audit").replaceChildren(
    ...steps.map((e) =>
      el("tr", {}, el("td", {}, when(e.at)), el("td", {}, e.name), el("td", { class: "num" }, e.version), el("td", {}, e.event), el("td", {}, e.reason))
    )
  );
  const rollout = await api(`/v1/streams/${state.stream}/rollout`).catch(() => null);
  const r = rollout && rollout.state;
  $("#rollout").textContent = !rollout || !rollout.stage
    ? "No challenger is being rolled out."
    : `v${r.challenger} in ${rollout.stage} against v${r.champion}: ${fmt(r.challenger_tally.events)} events, challenger ${fmt(r.challenger_tally.alerts)} alerts, champion ${fmt(r.champion_tally.alerts)}` +
      (rollout.stage === "canary" ? `; it decided ${fmt(r.canary_events)} events` : "");
  $("#aliases").replaceChildren(
    ...moves.map((a) =>
      el(
        "tr",
        {},
        el("td", {}, new Date(a.at / 1000).toISOString().slice(0, 19).replace("T", " ")),
        el("td", {}, a.name),
        el("td", {}, a.alias),
        el("td", {}, `${a.from_version == null ? "–" : "v" + a.from_version} → v${a.to_version}`),
        el("td", {}, a.reason)
      )
    )
  );
  const latest = drift && drift.latest;
  $("#drift-summary").textContent = latest
    ? `Last window: ${latest.events} events, ${fmt(100 * latest.drifted_share, 0)}% of features drifted${latest.drift ? " — drift" : ""}.`
    : "No finished drift window yet.";
  $("#drift").replaceChildren(
    ...((latest && latest.features) || []).map((f) =>
      el("tr", {}, el("td", {}, f.column), el("td", { class: "num" }, fmt(f.psi, 3)), el("td", { class: "num" }, fmt(f.wasserstein, 3)), el("td", {}, f.drifted ? "yes" : "no"))
    )
  );
}

// The confusion at the threshold and the precision-recall curve that
// training measured on the version's holdout (when it had labels).
function holdout(m) {
  const table = $("#confusion");
  const svg = $("#pr-curve");
  svg.replaceChildren();
  const c = m && m.metrics && m.metrics.holdout_confusion;
  $("#holdout-title").textContent = m ? `${m.name} v${m.version} on its holdout` : "No model yet";
  if (!c) {
    table.replaceChildren(el("tr", {}, el("td", {}, "No labelled holdout for this version.")));
    return;
  }
  table.replaceChildren(
    el("tr", {}, el("th", {}, ""), el("th", {}, "flagged"), el("th", {}, "not flagged")),
    el("tr", {}, el("th", {}, "fraud"), el("td", { class: "num" }, fmt(c.true_positives)), el("td", { class: "num" }, fmt(c.false_negatives))),
    el("tr", {}, el("th", {}, "genuine"), el("td", { class: "num" }, fmt(c.false_positives)), el("td", { class: "num" }, fmt(c.true_negatives))),
    el("tr", {}, el("td", { colspan: "3" }, `precision ${fmt(m.metrics.holdout_precision, 3)}, recall ${fmt(m.metrics.holdout_recall, 3)}, average precision ${fmt(m.metrics.holdout_average_precision, 3)}`))
  );
  const curve = m.metrics.holdout_pr_curve || [];
  if (curve.length) {
    const points = curve.map(([r, p]) => `${(20 + r * 370).toFixed(1)},${(185 - p * 175).toFixed(1)}`).join(" ");
    svg.append(svgEl("polyline", { class: "rate", points }));
    const axes = svgEl("text", { x: 20, y: 198 });
    axes.textContent = "recall 0 → 1; precision up to 1";
    svg.append(axes);
    svg.setAttribute("aria-label", `Precision-recall curve with ${curve.length} points; average precision ${fmt(m.metrics.holdout_average_precision, 3)}`);
  }
}

// Promote a version to champion, or move the champion back; an admin
// key's action, confirmed first.
async function moveAlias(m, action) {
  const question =
    action === "promote"
      ? `Make ${m.name} v${m.version} the champion? It decides on live events within a second.`
      : `Move ${m.name}'s champion back to the version it pointed at before?`;
  if (!window.confirm(question)) return;
  const path =
    `/v1/models/${encodeURIComponent(m.name)}/aliases/champion` + (action === "rollback" ? "/rollback" : "");
  const body = action === "promote" ? { version: m.version, reason: "from the dashboard" } : { reason: "from the dashboard" };
  try {
    await api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    $("#models-error").hidden = true;
  } catch (e) {
    $("#models-error").textContent = e.message;
    $("#models-error").hidden = false;
  }
  await showModels();
}

// --- start ---------------------------------------------------------------

$("#key").value = state.key;
$("#key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  state.key = $("#key").value.trim();
  localStorage.setItem("radar-key", state.key);
  route();
});
$("#alert-filter").addEventListener("submit", (e) => {
  e.preventDefault();
  state.alertsOffset = 0;
  loadAlerts().catch(alertsError);
});
$("#newer").addEventListener("click", () => {
  state.alertsOffset = Math.max(0, state.alertsOffset - state.alertsPage);
  loadAlerts().catch(alertsError);
});
$("#older").addEventListener("click", () => {
  state.alertsOffset += state.alertsPage;
  loadAlerts().catch(alertsError);
});
$("#stream-pick").addEventListener("change", (e) => {
  chooseStream(e.target.value);
  route();
});
window.addEventListener("hashchange", route);
loadContract().catch(report);
route();
