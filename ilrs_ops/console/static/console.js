/* ILRS operations console page: buildless, no external requests. Token in sessionStorage;
 * station tiles from WS /api/live (snapshot, then status/event messages); instrument detail
 * from /api/instruments/{id} and /telemetry. The API scopes what a token sees. */
"use strict";
(() => {
  const KEY = "ilrs.token";
  const NS = 1e9;
  const LIVE_KEEP = 600; // points in the live plot
  const $ = (sel) => document.querySelector(sel);
  const el = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const kid of kids) e.append(kid);
    return e;
  };

  let token = sessionStorage.getItem(KEY);
  let ws = null;
  let wsRetry = null;
  const tiles = new Map(); // instrument -> tile json
  const tileEls = new Map(); // instrument -> button
  let detail = null; // {id, info, channel, live: {x, ys}, livePlot, histPlot, range}

  // ------------------------------------------------------------------ auth and API

  async function api(path) {
    const r = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
    if (r.status === 401) { logout("Your token was refused; log in again."); throw new Error("401"); }
    if (!r.ok) {
      let msg = `${r.status}`;
      try { msg += `: ${(await r.json()).detail}`; } catch (e) { /* not JSON */ }
      throw new Error(msg);
    }
    return r.json();
  }

  function showLogin(message) {
    $("#login").hidden = false;
    $("#overview").hidden = true;
    $("#detail").hidden = true;
    $("#logout").hidden = true;
    $("#who").textContent = "";
    $("#login-error").textContent = message || "";
    $("#token").focus();
  }

  function logout(message) {
    token = null;
    sessionStorage.removeItem(KEY);
    if (ws) { ws.onclose = null; ws.close(); ws = null; }
    clearTimeout(wsRetry);
    tiles.clear(); tileEls.clear();
    $("#partners").replaceChildren();
    closeDetail();
    setConn(false, "not connected");
    showLogin(message);
  }

  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const candidate = $("#token").value.trim();
    if (!candidate) return;
    const r = await fetch("/api/status", { headers: { Authorization: `Bearer ${candidate}` } });
    if (r.status === 401) { $("#login-error").textContent = "Unknown token."; return; }
    if (!r.ok) { $("#login-error").textContent = `The console answered ${r.status}.`; return; }
    token = candidate;
    sessionStorage.setItem(KEY, token);
    $("#token").value = "";
    start(await r.json());
  });
  $("#logout").addEventListener("click", () => logout());

  // ------------------------------------------------------------------ overview

  function start(status) {
    $("#login").hidden = true;
    $("#logout").hidden = false;
    for (const p of status.partners) for (const t of p.instruments) tiles.set(t.instrument, t);
    renderOverview();
    connect();
    route();
  }

  function setConn(ok, text) {
    const c = $("#conn");
    c.textContent = text;
    c.className = `conn ${ok ? "ok" : "bad"}`;
  }

  function renderOverview() {
    const byPartner = new Map();
    for (const t of [...tiles.values()].sort((a, b) =>
      a.partner.localeCompare(b.partner) || a.instrument.localeCompare(b.instrument))) {
      if (!byPartner.has(t.partner)) byPartner.set(t.partner, []);
      byPartner.get(t.partner).push(t);
    }
    const focused = document.activeElement && document.activeElement.dataset.instrument;
    const root = $("#partners");
    root.replaceChildren();
    tileEls.clear();
    for (const [partner, list] of byPartner) {
      const grid = el("div", { class: "tiles", role: "list" });
      for (const t of list) {
        const b = el("button", { type: "button", class: "tile", "data-instrument": t.instrument },
          el("span", { class: "id" }), el("span", { class: "name" }), el("span", { class: "health" }));
        b.addEventListener("click", () => { location.hash = `#/i/${encodeURIComponent(t.instrument)}`; });
        tileEls.set(t.instrument, b);
        grid.append(el("div", { role: "listitem" }, b));
        paintTile(t);
      }
      root.append(el("section", { class: "partner", "data-partner": partner,
        "aria-label": `partner ${partner}` }, el("h3", { text: partner }), grid));
    }
    if (focused && tileEls.has(focused)) tileEls.get(focused).focus();
  }

  function ago(t) {
    if (!t.last_recv) return "never heard";
    const s = Math.max(0, Date.now() / 1000 - t.last_recv);
    return s < 90 ? `${s.toFixed(0)} s ago` : s < 5400 ? `${(s / 60).toFixed(0)} min ago`
      : `${(s / 3600).toFixed(1)} h ago`;
  }

  function paintTile(t) {
    const b = tileEls.get(t.instrument);
    if (!b) return;
    b.dataset.health = t.health;
    b.style.setProperty("--c", `var(--${t.health})`);
    b.querySelector(".id").textContent = t.instrument;
    b.querySelector(".name").textContent = t.name;
    b.querySelector(".name").title = t.name;
    b.querySelector(".health").textContent = `${t.health} · ${ago(t)}`;
    b.setAttribute("aria-label", `${t.instrument}, ${t.name}: ${t.health}`);
  }

  setInterval(() => { for (const t of tiles.values()) paintTile(t); }, 5000);

  // ------------------------------------------------------------------ live WebSocket

  function connect() {
    if (!token) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${proto}//${location.host}/api/live`, ["bearer", token]);
    setConn(false, "connecting…");
    ws.onmessage = (m) => onLive(JSON.parse(m.data));
    ws.onclose = (e) => {
      ws = null;
      if (e.code === 4401) { logout("Your token was refused; log in again."); return; }
      setConn(false, `live updates lost (${e.code}); reconnecting`);
      wsRetry = setTimeout(connect, 2000);
    };
  }

  function onLive(msg) {
    if (msg.type === "snapshot") {
      setConn(true, "live");
      tiles.clear();
      for (const t of msg.status) tiles.set(t.instrument, t);
      renderOverview();
      if (detail) paintDetailStatus(tiles.get(detail.id));
    } else if (msg.type === "status") {
      const t = msg.status;
      const isNew = !tiles.has(t.instrument);
      tiles.set(t.instrument, t);
      if (isNew) renderOverview(); else paintTile(t);
      if (detail && detail.id === t.instrument) { paintDetailStatus(t); pushLive(t); }
    } else if (msg.type === "event") {
      if (detail && detail.id === msg.event.instrument) addEvent(msg.event, true);
    }
  }

  // ------------------------------------------------------------------ routing

  function route() {
    if (!token) return;
    const m = location.hash.match(/^#\/i\/(.+)$/);
    if (m) openDetail(decodeURIComponent(m[1]));
    else {
      const was = detail && detail.id;
      closeDetail();
      $("#overview").hidden = false;
      if (was && tileEls.has(was)) tileEls.get(was).focus();
    }
  }
  window.addEventListener("hashchange", route);
  $("#back").addEventListener("click", () => { location.hash = "#/"; });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && detail) location.hash = "#/";
  });

  // ------------------------------------------------------------------ detail

  function closeDetail() {
    if (detail) {
      if (detail.livePlot) detail.livePlot.destroy();
      if (detail.histPlot) detail.histPlot.destroy();
    }
    detail = null;
    $("#detail").hidden = true;
  }

  async function openDetail(id) {
    closeDetail();
    $("#overview").hidden = true;
    $("#detail").hidden = false;
    $("#detail-title").textContent = id;
    $("#detail-meta").textContent = "loading…";
    $("#values tbody").replaceChildren();
    $("#events").replaceChildren();
    $("#channel").replaceChildren();
    $("#live-plot").replaceChildren();
    $("#hist-plot").replaceChildren();
    const d = { id, info: null, channel: null, live: null, range: 300 };
    detail = d;
    let info;
    try { info = await api(`/api/instruments/${encodeURIComponent(id)}`); } catch (e) {
      if (detail === d) $("#detail-meta").textContent = `cannot open ${id}: ${e.message}`;
      return;
    }
    if (detail !== d) return;
    d.info = info;
    d.chans = new Map(info.channels.map((c) => [c.name, c]));
    $("#detail-title").textContent = `${info.instrument} — ${info.name}`;
    $("#detail-meta").textContent = `partner ${info.partner} · ${info.kind} · APID ${info.apid}` +
      ` · every ${info.expected_period_s} s · ${info.counters.packets ?? 0} packets stored`;
    const plottable = info.channels.filter((c) => !c.enum && !(c.type || "").startsWith("str"));
    plottable.sort((a, b) => (b.limits ? 1 : 0) - (a.limits ? 1 : 0));
    for (const c of plottable) {
      $("#channel").append(el("option", { value: c.name,
        text: c.units ? `${c.name} (${c.units})` : c.name }));
    }
    // open on the channel in the worst limit state (the reason one clicks a red tile)
    const vals = (tiles.get(id) || info.status || {}).values || {};
    const worst = plottable.filter((c) => vals[c.name] && vals[c.name].state > 0)
      .sort((a, b) => vals[b.name].state - vals[a.name].state)[0];
    d.channel = worst ? worst.name : plottable.length ? plottable[0].name : null;
    for (const e of info.recent_events.slice().reverse()) addEvent(e, false);
    paintDetailStatus(tiles.get(id) || info.status);
    $("#back").focus();
    await selectChannel(d.channel);
  }

  $("#channel").addEventListener("change", (e) => selectChannel(e.target.value));
  for (const b of document.querySelectorAll("#ranges button")) {
    b.addEventListener("click", () => {
      for (const o of document.querySelectorAll("#ranges button"))
        o.setAttribute("aria-pressed", String(o === b));
      if (detail) { detail.range = Number(b.dataset.range); loadHistory(); }
    });
  }

  function paintDetailStatus(t) {
    if (!detail || !t) return;
    const badge = $("#detail-health");
    badge.textContent = t.health;
    badge.dataset.health = t.health;
    badge.style.setProperty("--c", `var(--${t.health})`);
    const body = $("#values tbody");
    const rows = [];
    for (const [name, v] of Object.entries(t.values || {})) {
      const st = v.state;
      const stText = st === null || st === undefined ? "" :
        ({ 0: "nominal", 1: "yellow", 2: "red", "-1": "invalid" })[st] ?? String(st);
      rows.push(el("tr", { "data-channel": name, "data-state": st ?? "" },
        el("th", { scope: "row", text: name }),
        el("td", { class: "num", text: fmtValue(v.value), title: JSON.stringify(v.value) }),
        el("td", { text: v.units || "" }),
        el("td", {}, stText ? el("span", { class: `st st-${st}`, text: stText }) : "")));
    }
    body.replaceChildren(...rows);
  }

  function fmtNum(x) {
    if (typeof x !== "number") return x === null || x === undefined ? "—" : String(x);
    if (Number.isInteger(x)) return String(x);
    return Math.abs(x) >= 1e6 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(3)
      : String(Number(x.toPrecision(5)));
  }
  function fmtValue(v) {
    if (Array.isArray(v)) {
      const head = v.slice(0, 4).map(fmtNum).join(", ");
      return `[${head}${v.length > 4 ? `, … ${v.length}` : ""}]`;
    }
    return fmtNum(v);
  }

  function addEvent(e, fresh) {
    const list = $("#events");
    const t = e.time || "";
    const what = [e.kind, e.channel, e.detail || (e.value !== undefined && e.value !== null
      ? `value ${fmtNum(e.value)}` : "")].filter(Boolean).join(" · ");
    const li = el("li", { "data-kind": e.kind || "" },
      el("time", { datetime: t, text: t.replace("T", " ").replace(/\.\d+Z$/, "Z") }), what);
    if (fresh) list.prepend(li); else list.append(li);
    while (list.children.length > 200) list.lastChild.remove();
  }

  // ------------------------------------------------------------------ plots

  function scalar(v) {
    if (Array.isArray(v)) {
      const xs = v.filter((x) => typeof x === "number");
      if (!xs.length) return [null, null, null];
      return [xs.reduce((a, b) => a + b, 0) / xs.length, Math.min(...xs), Math.max(...xs)];
    }
    return typeof v === "number" ? [v, v, v] : [null, null, null];
  }

  function limitSeries(chan) {
    const out = [];
    const lim = chan && chan.limits;
    if (!lim) return out;
    for (const [kind, color] of [["red", "#ff5a52"], ["yellow", "#f0b400"]]) {
      const r = lim[kind];
      if (!r) continue;
      if (r[0] !== null && r[0] !== undefined) out.push({ label: `${kind} low`, value: r[0], color });
      if (r[1] !== null && r[1] !== undefined) out.push({ label: `${kind} high`, value: r[1], color });
    }
    return out;
  }

  function makePlot(target, chan, names, data) {
    const box = $(target);
    box.replaceChildren();
    const limits = limitSeries(chan);
    const colors = ["#6cb6ff", "#7a8899", "#7a8899"];
    const series = [{}];
    names.forEach((n, i) => series.push({ label: n, stroke: colors[i], width: i ? 1 : 2,
      dash: i ? [2, 3] : undefined, spanGaps: false }));
    for (const l of limits) series.push({ label: l.label, stroke: l.color, width: 1, dash: [6, 4],
      points: { show: false } });
    const full = data.concat(limits.map((l) => data[0].map(() => l.value)));
    const axis = { stroke: "#9aa4b2", grid: { stroke: "#2e3744" }, ticks: { stroke: "#2e3744" } };
    const opts = {
      width: Math.max(300, box.clientWidth - 2), height: 240,
      scales: { x: { time: true } },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"), // station time is UTC
      series,
      axes: [{ ...axis }, { ...axis, size: 60, label: chan && chan.units ? chan.units : "" }],
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
    };
    const plot = new uPlot(opts, full, box);
    plot._limits = limits;
    box.dataset.points = String(data[0].length);
    return plot;
  }

  function setPlotData(plot, target, data) {
    const full = data.concat(plot._limits.map((l) => data[0].map(() => l.value)));
    plot.setData(full);
    $(target).dataset.points = String(data[0].length);
  }

  async function selectChannel(name) {
    const d = detail;
    if (!d || !name) return;
    d.channel = name;
    $("#channel").value = name;
    if (d.livePlot) { d.livePlot.destroy(); d.livePlot = null; }
    const chan = d.chans.get(name);
    const arr = Boolean(chan.count);
    d.live = { x: [], ys: arr ? [[], [], []] : [[]], arr };
    // seed the live plot with the last two minutes, then follow the WebSocket
    try {
      const now = Date.now() * 1e6;
      const r = await api(`/api/instruments/${encodeURIComponent(d.id)}/telemetry?channels=` +
        `${encodeURIComponent(name)}&start=${now - 120 * NS}&max_points=240`);
      if (detail !== d || d.channel !== name) return;
      const c = r.columns;
      for (let i = 0; i < c.time.length; i++) {
        if (!c[`${name}__count`][i]) continue;
        d.live.x.push(c.time[i] / NS);
        d.live.ys[0].push(c[`${name}__mean`][i]);
        if (arr) { d.live.ys[1].push(c[`${name}__min`][i]); d.live.ys[2].push(c[`${name}__max`][i]); }
      }
    } catch (e) { /* live only */ }
    if (detail !== d || d.channel !== name) return;
    d.livePlot = makePlot("#live-plot", chan, arr ? ["mean", "min", "max"] : [name],
      [d.live.x, ...d.live.ys]);
    loadHistory();
  }

  function pushLive(t) {
    const d = detail;
    if (!d || !d.livePlot || !d.live || !t.values || !t.last_packet_time_ns) return;
    const v = t.values[d.channel];
    if (!v) return;
    const x = t.last_packet_time_ns / NS;
    if (d.live.x.length && x <= d.live.x[d.live.x.length - 1]) return;
    const [mean, lo, hi] = scalar(v.value);
    d.live.x.push(x);
    d.live.ys[0].push(mean);
    if (d.live.arr) { d.live.ys[1].push(lo); d.live.ys[2].push(hi); }
    if (d.live.x.length > LIVE_KEEP) { d.live.x.shift(); for (const y of d.live.ys) y.shift(); }
    setPlotData(d.livePlot, "#live-plot", [d.live.x, ...d.live.ys]);
  }

  async function loadHistory() {
    const d = detail;
    if (!d || !d.channel) return;
    const name = d.channel;
    const range = d.range;
    const stop = Date.now() * 1e6;
    $("#hist-info").textContent = "loading…";
    let r;
    try {
      r = await api(`/api/instruments/${encodeURIComponent(d.id)}/telemetry?channels=` +
        `${encodeURIComponent(name)}&start=${stop - range * NS}&stop=${stop}&max_points=600`);
    } catch (e) {
      if (detail === d) $("#hist-info").textContent = `history unavailable: ${e.message}`;
      return;
    }
    if (detail !== d || d.channel !== name || d.range !== range) return;
    const c = r.columns;
    const x = [], mean = [], lo = [], hi = [];
    for (let i = 0; i < c.time.length; i++) {
      if (!c[`${name}__count`][i]) continue;
      x.push(c.time[i] / NS);
      mean.push(c[`${name}__mean`][i]); lo.push(c[`${name}__min`][i]); hi.push(c[`${name}__max`][i]);
    }
    if (d.histPlot) d.histPlot.destroy();
    d.histPlot = makePlot("#hist-plot", d.chans.get(name), ["mean", "min", "max"], [x, mean, lo, hi]);
    $("#hist-info").textContent = `${x.length} buckets of ${(range / 600).toFixed(1)} s from ` +
      `${r.source}; min/max dashed`;
  }

  window.addEventListener("resize", () => {
    if (!detail) return;
    for (const [p, sel] of [[detail.livePlot, "#live-plot"], [detail.histPlot, "#hist-plot"]]) {
      if (p) p.setSize({ width: Math.max(300, $(sel).clientWidth - 2), height: 240 });
    }
  });

  // ------------------------------------------------------------------ start

  if (token) {
    fetch("/api/status", { headers: { Authorization: `Bearer ${token}` } }).then(async (r) => {
      if (r.ok) start(await r.json()); else logout(r.status === 401 ? "Log in again." : "");
    }, () => showLogin("The console does not answer."));
  } else {
    showLogin();
  }
})();
