/* ILRS operations console page: buildless, no external requests. Token in sessionStorage;
 * station tiles from WS /api/live (snapshot, then status/event messages); instrument detail
 * from /api/instruments/{id} and /telemetry. The API scopes what a token sees. */
"use strict";
(() => {
  const KEY = "ilrs.token";
  const NS = 1e9;
  const LIVE_KEEP = 600; // points in the live plot
  const { $, el } = window.ilrsDom; // dom.js
  const { isoUtc, timeTicks, pushPoint } = window.ilrsDom;

  let token = sessionStorage.getItem(KEY);
  let ws = null;
  let wsRetry = null;
  const tiles = new Map(); // instrument -> tile json
  const tileEls = new Map(); // instrument -> button
  let detail = null; // {id, info, channel, live: {x, ys}, livePlot, histPlot, range}
  const alarms = new Map(); // "instrument/channel" -> alarm json (not cleared)
  const alarmLoads = new Set(); // buffers of live alarm changes that arrive while GET runs

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
    $("#sim").hidden = true;
    lunar = null;
    $("#clock-lunar").hidden = true;
    $("#login-error").textContent = message || "";
    $("#token").focus();
  }

  // commands.js follows the session, the live stream and the open instrument through these
  const tell = (name, detail) => window.dispatchEvent(new CustomEvent(`ilrs:${name}`, { detail }));

  function logout(message) {
    token = null;
    tell("session", { token: null, you: null });
    sessionStorage.removeItem(KEY);
    if (ws) { ws.onclose = null; ws.close(); ws = null; }
    clearTimeout(wsRetry);
    tiles.clear(); tileEls.clear();
    $("#partners").replaceChildren();
    alarms.clear();
    renderAlarms();
    if ($("#shelve-dialog").open) $("#shelve-dialog").close();
    clearReplays();
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
    if (r.status === 429) {
      const wait = r.headers.get("Retry-After") || "a few";
      $("#login-error").textContent = `Too many unknown tokens from here: try again in ${wait} s.`;
      return;
    }
    if (!r.ok) { $("#login-error").textContent = `The console answered ${r.status}.`; return; }
    token = candidate;
    sessionStorage.setItem(KEY, token);
    $("#token").value = "";
    start(await r.json());
  });
  $("#logout").addEventListener("click", () => logout());

  // ------------------------------------------------------------------ overview

  // Who is logged in, and whether the station is a simulation (the header says both).
  let me = null;
  async function loadMe() {
    try { me = await api("/api/me"); } catch (e) { $("#who").textContent = ""; return; }
    const who = $("#who");
    who.textContent = `${me.name} · ${me.role}${me.partner ? ` of ${me.partner}` : ""}`;
    who.title = `${me.role}: sees ${me.sees}`;
    who.dataset.role = me.role;
    const sim = $("#sim");
    sim.hidden = !me.simulation;
    sim.textContent = me.simulation ? `SIMULATED STATION · ${me.simulation}` : "";
    sim.title = me.simulation ? `${sim.textContent}. This station is the simulator of ` +
      "ilrs-ops up: its data, and any faults it injects, are made up." : "";
  }

  // The header clock: UTC from this machine, set by the console's offset; lunar day or night
  // at the station and the time to the next terminator from the simulator's environment model
  // (GET /api/clock; none for a station without one), counted down here between asks.
  let lunar = null; // {day, next, nextMs (console clock)}
  let skewMs = 0; // console clock - this machine's
  let clockAsked = 0;
  async function loadClock() {
    clockAsked = Date.now();
    let c;
    try { c = await api("/api/clock"); } catch (e) { return; }
    skewMs = c.now_ns / 1e6 - Date.now();
    lunar = c.lunar ? { day: c.lunar.day, next: c.lunar.next, nextMs: c.lunar.next_ns / 1e6 } : null;
    paintClock();
  }
  function span(s) {
    s = Math.max(0, Math.round(s));
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d) return `${d} d ${h} h`;
    if (h) return `${h} h ${String(m).padStart(2, "0")} min`;
    return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  }
  function paintClock() {
    const now = Date.now() + skewMs;
    const iso = new Date(now).toISOString();
    const t = $("#clock-utc");
    t.textContent = `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
    t.dateTime = iso;
    const l = $("#clock-lunar");
    l.hidden = !lunar || !token;
    if (!lunar) return;
    const left = (lunar.nextMs - now) / 1000;
    if ((left <= 0 || Date.now() - clockAsked > 15000) && token) loadClock();
    l.dataset.day = String(lunar.day);
    l.textContent = `lunar ${lunar.day ? "day" : "night"} · ${lunar.next} in ${span(left)}`;
    l.title = `at the station, by the simulator's environment model: ${lunar.next} at ` +
      `${new Date(lunar.nextMs).toISOString().slice(11, 19)} UTC`;
  }
  setInterval(paintClock, 1000);
  paintClock();

  function start(status) {
    $("#login").hidden = true;
    $("#logout").hidden = false;
    loadMe();
    loadClock();
    for (const p of status.partners) for (const t of p.instruments) tiles.set(t.instrument, t);
    tell("session", { token, you: status.you });
    renderOverview();
    loadAlarms();
    loadReplays();
    connect();
    route();
  }

  // Whether live updates flow. Without them every tile and the detail's badge say so: what
  // they show is the state when the link was lost, not the state now.
  let linkLost = null; // Date of the loss, or null while live

  function setConn(ok, text, lostNow = !ok) {
    const c = $("#conn");
    c.textContent = text;
    c.className = `conn ${ok ? "ok" : "bad"}`;
    let lost = linkLost; // connecting again: still lost, since the first loss
    if (ok) lost = null;
    else if (lostNow) lost = linkLost || new Date();
    if (Boolean(lost) === Boolean(linkLost)) return;
    linkLost = lost;
    document.body.dataset.link = lost ? "lost" : "live";
    for (const t of tiles.values()) paintTile(t);
    if (detail) paintDetailStatus(tiles.get(detail.id));
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
    if (linkLost) {
      const at = linkLost.toISOString().slice(11, 19);
      b.dataset.link = "lost";
      b.style.setProperty("--c", "var(--stale)");
      b.querySelector(".health").textContent = `no live link · was ${t.health} at ${at}Z`;
      b.setAttribute("aria-label", `${t.instrument}, ${t.name}: unknown, no live link ` +
        `since ${at} UTC (was ${t.health})`);
      return;
    }
    delete b.dataset.link;
    b.querySelector(".health").textContent = `${t.health} · ${ago(t)}`;
    b.setAttribute("aria-label", `${t.instrument}, ${t.name}: ${t.health}`);
  }

  setInterval(() => {
    for (const t of tiles.values()) paintTile(t);
    if (detail && detail.statusOnly && tiles.has(detail.id)) paintStatusOnly(tiles.get(detail.id));
  }, 5000);

  // ------------------------------------------------------------------ live WebSocket

  function connect() {
    if (!token) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${proto}//${location.host}/api/live`, ["bearer", token]);
    setConn(false, "connecting…", Boolean(linkLost)); // a first connection is no loss
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
      loadAlarms(); // (re)connected: what changed while the socket was down
      if (replaysShown) loadReplays();
      tell("resync", {});
      if (detail) paintDetailStatus(tiles.get(detail.id));
    } else if (msg.type === "catalog") { // a profile uploaded: instruments added or changed
      tiles.clear();
      for (const t of msg.status) tiles.set(t.instrument, t);
      renderOverview();
      if (detail) { paintDetailStatus(tiles.get(detail.id)); refreshDetail(detail); }
      tell("catalog", { instruments: [...tiles.keys()] });
    } else if (msg.type === "status") {
      const t = msg.status;
      const isNew = !tiles.has(t.instrument);
      tiles.set(t.instrument, t);
      if (isNew) renderOverview(); else paintTile(t);
      paintAlarmNow(t);
      if (detail && detail.id === t.instrument) { paintDetailStatus(t); pushLive(t); }
      tell("status", t); // dashboards.js
    } else if (msg.type === "event") {
      tell("event", msg.event);
      if (msg.event.alarm) liveAlarm(msg.event.alarm);
      if (detail && detail.id === msg.event.instrument && window.ilrsTime.state().live) {
        addEvent(msg.event, true);
      }
    } else if (msg.type === "replay") {
      putReplay(msg.replay);
      tell("replay", msg.replay);
    } else if (msg.type === "command") {
      tell("command", msg.command);
    }
  }


  // ------------------------------------------------------------------ alarms

  const STATE_ORDER = { active: 0, latched: 1, acknowledged: 2, shelved: 3 };
  const SEV_ORDER = { red: 0, invalid: 1, yellow: 2, nominal: 3 };
  const alarmKey = (a) => `${a.instrument}/${a.channel}`;

  function putAlarm(a) {
    const key = alarmKey(a);
    const cur = alarms.get(key);
    if (cur && (cur.changed_ns || 0) > (a.changed_ns || 0)) return; // older news
    if (a.state === null || a.state === undefined) alarms.delete(key); // cleared
    else alarms.set(key, a);
    scheduleAlarms();
  }

  function liveAlarm(a) {
    for (const buf of alarmLoads) buf.push(a);
    putAlarm(a);
  }

  async function loadAlarms() {
    const buf = [];
    alarmLoads.add(buf);
    let r;
    try { r = await api("/api/alarms"); } catch (e) {
      if (token) alarmMsg(`Alarm list unavailable: ${e.message}`, true);
      return;
    } finally { alarmLoads.delete(buf); }
    alarms.clear();
    for (const a of r.alarms) alarms.set(alarmKey(a), a);
    for (const a of buf) putAlarm(a); // live changes that came while the list was fetched
    scheduleAlarms();
  }

  let alarmsPending = false;
  function scheduleAlarms() {
    if (alarmsPending) return;
    alarmsPending = true;
    queueMicrotask(() => { alarmsPending = false; renderAlarms(); });
  }

  function alarmMsg(text, bad) {
    const m = $("#alarm-msg");
    m.textContent = text;
    m.classList.toggle("bad", Boolean(bad));
  }

  // The API lets a token act on the alarms of instruments whose data it may read; the tiles
  // carry values exactly for those (null for viewers and for other partners' instruments).
  function canAct(a) {
    const t = tiles.get(a.instrument);
    return Boolean(t && t.values);
  }

  function hhmmss(ns) {
    return ns ? new Date(ns / 1e6).toISOString().slice(11, 19) : "—";
  }
  function agoNs(ns) {
    if (!ns) return "";
    const s = Math.max(0, Date.now() / 1000 - ns / NS);
    return s < 90 ? `${s.toFixed(0)} s ago` : s < 5400 ? `${(s / 60).toFixed(0)} min ago`
      : `${(s / 3600).toFixed(1)} h ago`;
  }

  function renderAlarms() {
    const list = $("#alarm-list");
    const act = document.activeElement;
    const hadFocus = list.contains(act) ? { key: act.closest("tr").dataset.key,
      act: act.dataset.act, index: [...list.rows].indexOf(act.closest("tr")) } : null;
    const sorted = [...alarms.values()].sort((a, b) =>
      (STATE_ORDER[a.state] ?? 9) - (STATE_ORDER[b.state] ?? 9) ||
      (SEV_ORDER[a.severity] ?? 9) - (SEV_ORDER[b.severity] ?? 9) ||
      (b.changed_ns || 0) - (a.changed_ns || 0) || alarmKey(a).localeCompare(alarmKey(b)));
    const counts = { active: 0, latched: 0, acknowledged: 0, shelved: 0 };
    const rows = sorted.map((a) => { counts[a.state] = (counts[a.state] || 0) + 1; return alarmRow(a); });
    list.replaceChildren(...rows);
    $("#alarm-empty").hidden = rows.length > 0;
    if (detail && detail.statusOnly && tiles.has(detail.id)) paintStatusOnly(tiles.get(detail.id));
    $("#alarm-counts").textContent = Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(" · ");
    if (hadFocus) {
      const row = rows.find((r) => r.dataset.key === hadFocus.key) ||
        rows[Math.min(hadFocus.index, rows.length - 1)];
      const target = row && (hadFocus.act ? row.querySelector(`button[data-act="${hadFocus.act}"]`) ||
        row.querySelector("button") || row.querySelector("a") : row.querySelector("a"));
      (target || $("#alarms-title")).focus();
    }
  }

  // A channel's value with its units, "—" when there is none (viewers see no values).
  // An array as its range: the element in alarm is the smallest or the largest.
  function withUnits(v, units) {
    if (v === null || v === undefined) return "—";
    const xs = Array.isArray(v) ? v.filter((x) => typeof x === "number") : null;
    const text = !xs ? fmtNum(v) : !xs.length ? "—"
      : Math.min(...xs) === Math.max(...xs) ? fmtNum(xs[0])
      : `${fmtNum(Math.min(...xs))} … ${fmtNum(Math.max(...xs))}`;
    return `${text}${units ? ` ${units}` : ""}`;
  }
  function nowValue(a) {
    const t = tiles.get(a.instrument);
    const v = t && t.values ? t.values[a.channel] : null;
    return v ? [v.value, v.units] : [null, ""];
  }
  const channelHash = (iid, ch) =>
    `#/i/${encodeURIComponent(iid)}${ch ? `/${encodeURIComponent(ch)}` : ""}`;

  function alarmRow(a) {
    const key = alarmKey(a);
    const [now, units] = nowValue(a);
    const tripped = withUnits(a.trip_value ?? a.value, units);
    let sub = "";
    if (a.state === "shelved") {
      sub = `to ${hhmmss(a.shelved_until_ns)} · ${a.underlying}`;
    } else if (a.state === "acknowledged" && a.acked_by) {
      sub = `by ${a.acked_by}`;
    }
    const stateTitle = [a.state === "shelved" && a.shelved_by ? `shelved by ${a.shelved_by}` : "",
      a.shelve_reason || "", a.ack_reason ? `ack: ${a.ack_reason}` : "",
      `now ${a.limit_state}`].filter(Boolean).join(" · ");
    const acts = el("td", { class: "acts" });
    if (canAct(a)) {
      const label = `${a.instrument} ${a.channel}`;
      if (a.underlying === "active" || a.underlying === "latched") {
        acts.append(el("button", { type: "button", "data-act": "ack", text: "Ack",
          "aria-label": `Acknowledge ${label}` }));
      }
      if (a.state === "shelved") {
        acts.append(el("button", { type: "button", "data-act": "unshelve", text: "Unshelve",
          "aria-label": `Unshelve ${label}` }));
      } else {
        acts.append(el("button", { type: "button", "data-act": "shelve", text: "Shelve",
          "aria-label": `Shelve ${label}`, "aria-haspopup": "dialog" }));
      }
    }
    return el("tr", { class: `sev-${a.severity}`, "data-key": key, "data-instrument": a.instrument,
      "data-channel": a.channel, "data-state": a.state, "data-severity": a.severity,
      "data-since": a.since || "" }, // ISO: the ns of since_ns do not survive a JS number
      el("td", { class: "astate", title: stateTitle }, el("span", { class: "sev", text: a.severity }), " ",
        a.state, sub ? el("span", { class: "sub", text: sub }) : ""),
      el("td", { class: "nw" }, el("a", { href: channelHash(a.instrument, a.channel), text: a.instrument,
        "aria-label": `Open ${a.instrument} on ${a.channel}` })),
      el("td", { class: "nw" }, el("a", { href: channelHash(a.instrument, a.channel), text: a.channel,
        tabindex: "-1" })),
      el("td", { class: "num trip", text: tripped,
        title: a.trip ? `tripped at ${a.trip.replace("T", " ")}` : "" }),
      el("td", { class: "num now", text: withUnits(now, units) }),
      el("td", { title: a.since || "" }, el("time", { datetime: a.since || "", text: hhmmss(a.since_ns) }),
        el("span", { class: "ago", "data-ns": String(a.since_ns ?? ""), text: agoNs(a.since_ns) })),
      acts);
  }

  // The "Now" cells follow the live status, in place (a re-render would cost the focus).
  function paintAlarmNow(t) {
    for (const r of document.querySelectorAll(`#alarm-list tr[data-instrument="${CSS.escape(t.instrument)}"]`)) {
      const a = alarms.get(r.dataset.key);
      if (!a) continue;
      const [now, units] = nowValue(a);
      r.querySelector(".now").textContent = withUnits(now, units);
    }
  }

  setInterval(() => {
    for (const s of document.querySelectorAll("#alarm-list .ago")) s.textContent = agoNs(Number(s.dataset.ns));
  }, 5000);
  // viewers get no live events, and shelves run out: refresh the list now and then
  setInterval(() => { if (token && ws) loadAlarms(); }, 30000);

  async function post(path, body) {
    const r = await fetch(path, { method: "POST", body: JSON.stringify(body),
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" } });
    if (r.status === 401) { logout("Your token was refused; log in again."); throw new Error("401"); }
    let doc = null;
    try { doc = await r.json(); } catch (e) { /* not JSON */ }
    return { status: r.status, ok: r.ok, doc };
  }

  function refusal(res) {
    const detail = res.doc && res.doc.detail ? (typeof res.doc.detail === "string"
      ? res.doc.detail : JSON.stringify(res.doc.detail)) : "";
    if (res.status === 403) return `Not allowed: ${detail || "this token may not act on that alarm"}`;
    return `The console refused (${res.status})${detail ? `: ${detail}` : ""}`;
  }

  async function alarmAction(a, kind, body) {
    const path = `/api/alarms/${encodeURIComponent(a.instrument)}/${encodeURIComponent(a.channel)}/${kind}`;
    let res;
    try { res = await post(path, body); } catch (e) {
      if (token) alarmMsg(`${kind} failed: ${e.message}`, true);
      return null;
    }
    if (res.ok) {
      if (res.doc && res.doc.alarm) putAlarm(res.doc.alarm);
      const done = { ack: "Acknowledged", shelve: "Shelved", unshelve: "Unshelved" }[kind];
      const after = res.doc && res.doc.alarm && res.doc.alarm.state ? res.doc.alarm.state : "cleared";
      alarmMsg(`${done} ${a.instrument} ${a.channel}: now ${after}.`);
    } else {
      alarmMsg(refusal(res), true);
      if (res.status === 409) loadAlarms();
    }
    return res;
  }

  $("#alarm-list").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-act]");
    if (!b) return;
    const a = alarms.get(b.closest("tr").dataset.key);
    if (!a) return;
    if (b.dataset.act === "shelve") { openShelve(a, b); return; }
    b.disabled = true;
    alarmAction(a, b.dataset.act, { reason: "" }).finally(() => { b.disabled = false; });
  });

  let shelving = null; // {alarm, opener}
  function openShelve(a, opener) {
    shelving = { alarm: a, opener };
    $("#shelve-target").textContent = `${a.instrument} · ${a.channel} · ${a.severity} · ${a.state}`;
    $("#shelve-reason").value = "";
    $("#shelve-error").textContent = "";
    $("#shelve-dialog").showModal();
    $("#shelve-reason").focus();
  }
  $("#shelve-cancel").addEventListener("click", () => $("#shelve-dialog").close());
  $("#shelve-dialog").addEventListener("close", () => {
    if ($("#shelve-dialog").open) return; // reopened before this event came
    const s = shelving;
    shelving = null;
    if (!s) return;
    // A live update may have re-rendered the list while the dialog was open: back to the same
    // button of the same alarm's new row, not to whichever button comes first.
    const row = $("#alarm-list").querySelector(`tr[data-key="${CSS.escape(alarmKey(s.alarm))}"]`);
    const same = row && row.querySelector(`button[data-act="${s.opener.dataset.act}"]`);
    const target = s.opener.isConnected ? s.opener : same || (row && row.querySelector("button"));
    (target || $("#alarms-title")).focus();
  });
  $("#shelve-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!shelving) { $("#shelve-dialog").close(); return; }
    const reason = $("#shelve-reason").value.trim();
    if (!reason) { $("#shelve-error").textContent = "Say why it is shelved."; $("#shelve-reason").focus(); return; }
    const secs = Number(new FormData(ev.target).get("until"));
    const until = new Date(Date.now() + secs * 1000).toISOString();
    $("#shelve-ok").disabled = true;
    try {
      const res = await alarmAction(shelving.alarm, "shelve", { until, reason });
      if (res && res.ok) $("#shelve-dialog").close();
      else if (res) $("#shelve-error").textContent = refusal(res);
    } finally { $("#shelve-ok").disabled = false; }
  });

  // ------------------------------------------------------------------ replays

  // Operators only: the panel shows when GET /api/replays answers 200 (403 for other roles).
  // Progress comes over the WebSocket as {"type": "replay"}; rows are updated in place, so a
  // focused Pause or Stop button keeps its focus while the progress bar moves.
  const replays = new Map(); // id -> replay json
  const replayRows = new Map(); // id -> tr
  let replaysShown = false;
  const replayBusy = new Set(); // recordings and replays with a request on the way
  const DONE = new Set(["finished", "stopped", "failed"]);

  function replayMsg(text, bad) {
    const m = $("#replay-msg");
    m.textContent = text;
    m.classList.toggle("bad", Boolean(bad));
  }

  function clearReplays() {
    replaysShown = false;
    replays.clear();
    replayRows.clear();
    $("#replay-list").replaceChildren();
    $("#recording-list").replaceChildren();
    replayMsg("");
    $("#replays").hidden = true;
  }

  async function loadReplays() {
    let r;
    try {
      r = await fetch("/api/replays", { headers: { Authorization: `Bearer ${token}` } });
    } catch (e) { return; }
    if (r.status === 403 || r.status === 401 || !token) { $("#replays").hidden = true; return; }
    if (!r.ok) { replayMsg(`Replays unavailable (${r.status})`, true); return; }
    const doc = await r.json();
    replaysShown = true;
    $("#replays").hidden = false;
    for (const rp of doc.replays.slice().reverse()) putReplay(rp);
    loadRecordings();
  }

  async function loadRecordings() {
    let r;
    try { r = await api("/api/recordings"); } catch (e) {
      if (token) replayMsg(`Recordings unavailable: ${e.message}`, true);
      return;
    }
    const list = $("#recording-list");
    const act = document.activeElement;
    const had = list.contains(act) ? act.closest("tr").dataset.name : null;
    const rows = r.recordings.map(recordingRow);
    list.replaceChildren(...rows);
    $("#recording-empty").hidden = rows.length > 0;
    if (had) {
      const row = rows.find((x) => x.dataset.name === had);
      ((row && row.querySelector("button")) || $("#replays-title")).focus();
    }
  }

  function recordingRow(rec) {
    const acts = el("td", { class: "acts" });
    if (!rec.error && !rec.writing && rec.packets > 0) {
      acts.append(el("button", { type: "button", "data-act": "start", text: "Start",
        "aria-label": `Start a replay of ${rec.name}` }));
    }
    const insts = (rec.instruments || []).join(", ");
    const note = rec.error ? rec.error : rec.writing ? "being written by a replay"
      : rec.stopped ? "stopped early" : "";
    return el("tr", { "data-name": rec.name, "data-kind": rec.kind || "" },
      el("td", { title: rec.source || "" }, rec.name, note ? el("span", { class: "sub", text: note }) : ""),
      el("td", { text: rec.kind || "—" }),
      el("td", { class: "num", text: insts || "—", title: insts }),
      el("td", { class: "num", text: rec.packets === undefined ? "—" : String(rec.packets) }),
      el("td", { class: "num", text: rec.created ? rec.created.replace("T", " ").replace("Z", "") : "—" }),
      acts);
  }

  function replayActs(rp) {
    if (rp.state === "running") return ["pause", "stop"];
    if (rp.state === "paused") return ["resume", "stop"];
    return [];
  }

  function putReplay(rp) {
    if (!replaysShown) return;
    const was = replays.get(rp.id);
    if (was && was.seq > rp.seq) return; // older news (a WebSocket message and a POST raced)
    replays.set(rp.id, rp);
    let tr = replayRows.get(rp.id);
    if (!tr) {
      tr = el("tr", { "data-id": rp.id },
        el("td", {}, el("span", { class: "name" }), el("span", { class: "sub info" })),
        el("td", { class: "rstate" }),
        el("td", {}, el("progress", { "aria-label": `Progress of the replay into ${rp.to}` }),
          el("span", { class: "sub count" })),
        el("td", { class: "num speed" }),
        el("td", { class: "acts" }));
      replayRows.set(rp.id, tr);
      $("#replay-list").prepend(tr);
    }
    tr.dataset.state = rp.state;
    tr.querySelector(".name").textContent = `${rp.recording} → ${rp.to}`;
    tr.querySelector(".info").textContent = rp.error ? rp.error : `by ${rp.by} · ${hhmmssIso(rp.started)}`;
    tr.querySelector(".rstate").textContent = rp.state;
    const bar = tr.querySelector("progress");
    bar.max = Math.max(1, rp.total);
    bar.value = rp.sent;
    tr.querySelector(".count").textContent = `${rp.sent} / ${rp.total} messages`;
    tr.querySelector(".speed").textContent = rp.speed === "max" ? "max" : `${rp.speed}×`;
    const acts = tr.querySelector(".acts");
    const want = replayActs(rp).join(" ");
    if (acts.dataset.acts !== want) {
      const focused = acts.contains(document.activeElement);
      acts.dataset.acts = want;
      const label = { pause: "Pause", resume: "Resume", stop: "Stop" };
      acts.replaceChildren(...replayActs(rp).map((a) => el("button", { type: "button",
        "data-act": a, text: label[a], "aria-label": `${label[a]} the replay into ${rp.to}` })));
      if (focused) (acts.querySelector("button") || $("#replays-title")).focus();
    }
    $("#replay-empty").hidden = replays.size > 0;
    if (DONE.has(rp.state) && (!was || !DONE.has(was.state))) loadRecordings();
  }

  function hhmmssIso(iso) { return iso ? iso.slice(11, 19) : "—"; }

  $("#recording-list").addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-act=start]");
    if (!b) return;
    const name = b.closest("tr").dataset.name;
    const sp = $("#replay-speed").value;
    if (replayBusy.has(name)) return; // (not disabled: a disabled button loses the focus)
    replayBusy.add(name);
    let res;
    try {
      res = await post("/api/replays", { recording: name, speed: sp === "max" ? "max" : Number(sp) });
    } catch (e) {
      if (token) replayMsg(`Start failed: ${e.message}`, true);
      return;
    } finally { replayBusy.delete(name); }
    if (res.ok) {
      putReplay(res.doc);
      replayMsg(`Replaying ${name} into ${res.doc.to} at ${sp === "max" ? "max speed" : `${sp}×`}.`);
      loadRecordings();
    } else {
      replayMsg(refusal(res), true);
    }
  });

  $("#replay-list").addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-act]");
    if (!b) return;
    const id = b.closest("tr").dataset.id;
    const act = b.dataset.act;
    if (replayBusy.has(id)) return;
    replayBusy.add(id);
    let res;
    try { res = await post(`/api/replays/${encodeURIComponent(id)}/${act}`, {}); } catch (e) {
      if (token) replayMsg(`${act} failed: ${e.message}`, true);
      return;
    } finally { replayBusy.delete(id); }
    if (res.ok) {
      putReplay(res.doc);
      replayMsg(`Replay into ${res.doc.to}: ${res.doc.state}.`);
    } else {
      replayMsg(refusal(res), true);
    }
  });

  // ------------------------------------------------------------------ routing

  // The view is the hash up to "?"; after it come the view's own parameters (the trend's) and
  // the time conductor's (timebar.js), which a view follows through `ilrs:time`.
  let routed = null; // the view path last opened
  function route() {
    if (!token) return;
    const path = location.hash.split("?")[0];
    const m = path.match(/^#\/i\/([^/]+)(?:\/(.+))?$/);
    const view = m ? "detail" : path === "#/events" ? "events"
      : path === "#/links" ? "links"
      : /^#\/packets(\/|$)/.test(path) ? "packets"
      : path === "#/trend" ? "trend"
      : /^#\/dashboards(\/[^/]+)?$/.test(path) ? "dashboards" // dashboards.js
      : /^#\/(profiles|audit|export)$/.test(path) ? path.slice(2) // tools.js
      : "overview";
    const same = path === routed;
    routed = path;
    tell("route", { view });
    if (m && same && detail) return; // only the time changed: the detail follows ilrs:time
    if (m) openDetail(decodeURIComponent(m[1]), m[2] ? decodeURIComponent(m[2]) : null);
    else if (view !== "overview") { // events.js, links.js, packets.js, trend.js, tools.js
      closeDetail();
      $("#overview").hidden = true;
    } else {
      const was = detail && detail.id;
      closeDetail();
      $("#overview").hidden = false;
      if (was && tileEls.has(was)) tileEls.get(was).focus();
    }
  }
  window.addEventListener("hashchange", route);

  // The channel shown is part of the URL (#/i/{instrument}/{channel}), so that a reload or a
  // shared link opens it again. Choosing a channel is no navigation: the history entry is
  // replaced (its time stamp kept, timebar.js), Back goes where it went before, and route()
  // knows the new path, so that a later time change does not open the detail again.
  function showChannelInUrl(iid, name) {
    const path = location.hash.split("?")[0];
    const want = channelHash(iid, name);
    const m = path.match(/^#\/i\/([^/]+)/);
    if (path === want || !m || decodeURIComponent(m[1]) !== iid) return; // (left meanwhile)
    history.replaceState(history.state, "", window.ilrsTime.withTime(want));
    routed = want;
  }
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
    if (detail) tell("detail", { id: null });
    detail = null;
    $("#detail").hidden = true;
  }

  // ``channel``: the one to plot (an alarm's); else the one in the worst limit state.
  // The open instrument's profile may be the one that changed: open it again (same channel)
  // when what the page drew from it (name, channels, units, limits...) is not what it was.
  const shape = (info) => JSON.stringify({ ...info, status: null, counters: null });
  async function refreshDetail(d) {
    if (!d.info) return;
    let info;
    try { info = await api(`/api/instruments/${encodeURIComponent(d.id)}`); } catch (e) { return; }
    if (detail === d && shape(info) !== shape(d.info)) openDetail(d.id, d.channel, true);
  }

  async function openDetail(id, channel = null, again = false) {
    if (!again && detail && detail.id === id && detail.info && channel) { // just the channel
      if (detail.chans.has(channel)) { selectChannel(channel); return; }
    }
    closeDetail();
    $("#overview").hidden = true;
    $("#detail").hidden = false;
    const seen = tiles.get(id);
    $("#status-only").hidden = true;
    $("#detail-data").hidden = false;
    if (seen && !seen.values) { openStatusOnly(seen); return; } // a viewer: no data to ask for
    $("#detail-title").textContent = id;
    $("#detail-meta").textContent = "loading…";
    $("#values tbody").replaceChildren();
    $("#events").replaceChildren();
    $("#channel").replaceChildren();
    $("#live-plot").replaceChildren();
    $("#hist-plot").replaceChildren();
    const d = { id, info: null, channel: null, live: null, histSeq: 0 };
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
    $("#detail-meta").textContent = `partner ${info.partner} · ${info.kind}` +
      ` · APID ${hexApid(info.apid)}` +
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
    const asked = channel && d.chans.get(channel);
    if (asked && !plottable.includes(asked)) { // an enum channel in alarm: still the one to show
      $("#channel").prepend(el("option", { value: asked.name, text: asked.name }));
    }
    d.channel = asked ? asked.name : worst ? worst.name : plottable.length ? plottable[0].name : null;
    paintLiveMode();
    if (window.ilrsTime.state().live) {
      for (const e of info.recent_events.slice().reverse()) addEvent(e, false);
    } else loadDetailEvents(d);
    tell("detail", { id, info });
    paintDetailStatus(tiles.get(id) || info.status);
    $("#back").focus();
    await selectChannel(d.channel);
  }

  // A tile whose data this token may not read (a viewer's): what the tile knows, nothing
  // asked of the data API (which would refuse), kept current by the live status.
  function openStatusOnly(t) {
    detail = { id: t.instrument, statusOnly: true };
    $("#detail-title").textContent = `${t.instrument} — ${t.name}`;
    $("#detail-meta").textContent = `partner ${t.partner} · ${t.kind} · every ` +
      `${t.expected_period_s} s · status only`;
    $("#detail-data").hidden = true;
    $("#status-only").hidden = false;
    paintDetailStatus(t);
    $("#back").focus();
  }

  function paintStatusOnly(t) {
    const rejects = Object.values(t.rejects || {}).reduce((a, b) => a + b, 0);
    const last = t.last_packet_time ? `${ago(t)} (packet time ${t.last_packet_time.replace("T", " ")
      .replace(/\.\d+Z$/, "Z")})` : ago(t);
    const items = [["Health", linkLost ? `unknown: no live link (was ${t.health})` : t.health, "health"],
      ["Last packet", last, "age"], ["Packets", String(t.packets ?? 0), "packets"],
      ["Rejected packets", String(rejects), "rejects"]];
    $("#status-list").replaceChildren(...items.flatMap(([k, v, key]) =>
      [el("dt", { text: k }), el("dd", { text: v, "data-item": key })]));
    const mine = [...alarms.values()].filter((a) => a.instrument === t.instrument);
    $("#status-alarms").replaceChildren(...(mine.length ? mine.map((a) =>
      el("li", { class: `sev-${a.severity}`, "data-channel": a.channel, "data-state": a.state },
        el("span", { class: "sev", text: a.severity }), ` ${a.channel} · ${a.state} since ` +
        `${hhmmss(a.since_ns)}Z`)) : [el("li", { class: "meta", text: "No alarms." })]));
  }

  $("#channel").addEventListener("change", (e) => selectChannel(e.target.value));
  // The time conductor moved: the history and the events show its window. In archive the live
  // plot and the event list stand still (the values table, live status, keeps going).
  window.addEventListener("ilrs:time", () => {
    const d = detail;
    if (!d || d.statusOnly || !d.info) return;
    paintLiveMode();
    loadDetailEvents(d);
    if (window.ilrsTime.state().live) selectChannel(d.channel); // the live plot seeded anew
    else loadHistory();
  });
  function paintLiveMode() {
    const live = window.ilrsTime.state().live;
    $("#live-title").textContent = live ? "Live" : "Live (paused: archive)";
    $("#live-plot").dataset.paused = String(!live);
    $("#events-title").textContent = live ? "Recent events" : "Events in the window";
  }
  // Realtime: the detail's own recent events (last 24 h, newest 50), then the live ones;
  // archive: the newest 50 of the window, from the store.
  async function loadDetailEvents(d) {
    const w = window.ilrsTime.window();
    let list;
    try {
      if (w.live) list = (await api(`/api/instruments/${encodeURIComponent(d.id)}`)).recent_events;
      else {
        const q = new URLSearchParams({ instrument: d.id, start: String(w.start),
          stop: String(w.stop), limit: "50" });
        list = (await api(`/api/events?${q}`)).events;
      }
    } catch (e) { return; }
    if (detail !== d || w.live !== window.ilrsTime.state().live) return;
    $("#events").replaceChildren();
    for (const e of list.slice().reverse()) addEvent(e, false);
  }

  function paintDetailStatus(t) {
    if (!detail || !t) return;
    const badge = $("#detail-health");
    badge.textContent = linkLost ? `no live link (was ${t.health})` : t.health;
    badge.dataset.health = t.health;
    badge.dataset.link = linkLost ? "lost" : "live";
    badge.style.setProperty("--c", linkLost ? "var(--stale)" : `var(--${t.health})`);
    if (detail.statusOnly) { paintStatusOnly(t); return; }
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

  // An event's detail: the console's own events (acks, shelves, profile uploads) carry JSON,
  // as an object live and as text from the store; ingest's carry words ("nominal -> red").
  function detailOf(e) {
    if (e.detail && typeof e.detail === "object") return e.detail;
    if (typeof e.detail === "string" && e.detail.startsWith("{")) {
      try { return JSON.parse(e.detail); } catch (err) { /* words after all */ }
    }
    return null;
  }

  function eventText(e) {
    const d = detailOf(e);
    if (!d) {
      return [e.kind, e.channel, e.detail || (e.value !== undefined && e.value !== null
        ? `value ${fmtNum(e.value)}` : "")].filter(Boolean).join(" · ");
    }
    const by = d.who ? `by ${d.who}${d.role ? ` (${d.role})` : ""}` : "";
    const why = d.reason ? `: ${d.reason}` : "";
    if (e.kind === "profile") {
      return [`profile ${d.replaced ? "replaced" : "uploaded"} ${by}`, d.path,
        d.apid !== undefined ? `APID ${hexApid(d.apid)}` : "",
        d.bytes !== undefined ? `${d.bytes} bytes` : "",
        d.sha256 ? `sha256 ${d.sha256.slice(0, 12)}…` : ""].filter(Boolean).join(" · ");
    }
    if (e.kind === "shelve") {
      return `shelve · ${e.channel} · ${by} until ${hhmmss(d.until_ns)}Z${why}`;
    }
    if (e.kind === "ack" || e.kind === "unshelve") return `${e.kind} · ${e.channel} · ${by}${why}`;
    const rest = Object.entries(d).filter(([k]) => !["who", "role", "partner"].includes(k))
      .map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : v}`);
    return [e.kind, e.channel, by, ...rest].filter(Boolean).join(" · ");
  }

  window.ilrsEventText = eventText; // the station-wide log (events.js) words events alike
  // dashboards.js shows values and plots as the instrument page does, with these
  window.ilrsShow = { withUnits, fmtValue, scalar, withGaps, makePlot, setPlotData,
    get gapPeriods() { return GAP_PERIODS; } };

  function addEvent(e, fresh) {
    const list = $("#events");
    const t = e.time || "";
    const li = el("li", { "data-kind": e.kind || "" },
      el("time", { datetime: t, text: t.replace("T", " ").replace(/\.\d+Z$/, "Z") }), eventText(e));
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

  // APIDs as the CLI and the profiles write them: 0x2a1 (three hex digits, 11 bits).
  function hexApid(apid) {
    return typeof apid === "number" ? `0x${apid.toString(16).padStart(3, "0")}` : String(apid ?? "—");
  }

  // Station time is UTC, written ISO-like with seconds: the axis gives the time of day and,
  // on the first tick and where the day changes, the date; hovering gives the full instant.

  function makePlot(target, chan, names, data) {
    const box = $(target);
    box.replaceChildren();
    const limits = limitSeries(chan);
    const colors = ["#6cb6ff", "#7a8899", "#7a8899"];
    const hover = (u, v) => (v === null || v === undefined ? "—" : isoUtc(v, true));
    const series = [{ label: "UTC", value: hover }];
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
      axes: [{ ...axis, values: timeTicks, space: 80, size: 56 },
        { ...axis, size: 60, label: chan && chan.units ? chan.units : "" }],
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
    };
    const plot = new uPlot(opts, full, box);
    plot._limits = limits;
    box._plot = plot; // for the browser tests: the tick labels are drawn, not in the DOM
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
    showChannelInUrl(d.id, name);
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
      const period = Number(d.info.expected_period_s) || 1;
      [d.live.x, d.live.ys] = withGaps(d.live.x, d.live.ys, GAP_PERIODS * Math.max(period, 0.5));
    } catch (e) { /* live only */ }
    if (detail !== d || d.channel !== name) return;
    d.livePlot = makePlot("#live-plot", chan, arr ? ["mean", "min", "max"] : [name],
      [d.live.x, ...d.live.ys]);
    loadHistory();
  }

  function pushLive(t) {
    const d = detail;
    if (!d || !d.livePlot || !d.live || !t.values || !t.last_packet_time_ns) return;
    if (!window.ilrsTime.state().live) return; // archive: nothing moves
    const v = t.values[d.channel];
    if (!v) return;
    const period = Number(d.info.expected_period_s) || 1;
    const [mean, lo, hi] = scalar(v.value);
    if (!pushPoint(d.live, t.last_packet_time_ns / NS, d.live.arr ? [mean, lo, hi] : [mean],
      GAP_PERIODS * Math.max(period, 0.5), LIVE_KEEP)) return;
    setPlotData(d.livePlot, "#live-plot", [d.live.x, ...d.live.ys]);
  }

  // Below this many samples in the window the history plot shows the samples themselves, at
  // their own times; above it, min/max/mean buckets. Either way the axis spans the window
  // chosen (a young station's data sits at the right end), and a stretch without data longer
  // than GAP_PERIODS packet periods (or two buckets) is drawn as a gap, not bridged by a line.
  const RAW_MAX = 2000;
  const GAP_PERIODS = 3;

  // Points (x, ys) sorted by x with a null point wherever two are more than maxStep apart:
  // uPlot does not draw a line across a null (spanGaps false).
  function withGaps(x, ys, maxStep) {
    const gx = [], gys = ys.map(() => []);
    for (let i = 0; i < x.length; i++) {
      if (i && x[i] - x[i - 1] > maxStep) {
        gx.push((x[i] + x[i - 1]) / 2);
        for (const g of gys) g.push(null);
      }
      gx.push(x[i]);
      ys.forEach((y, k) => gys[k].push(y[i]));
    }
    return [gx, gys];
  }

  async function loadHistory() {
    const d = detail;
    if (!d || !d.channel) return;
    const name = d.channel;
    const { start, stop } = window.ilrsTime.window(); // timebar.js
    const range = (stop - start) / NS;
    const my = ++d.histSeq;
    $("#hist-info").textContent = "loading…";
    const base = `/api/instruments/${encodeURIComponent(d.id)}/telemetry?channels=` +
      `${encodeURIComponent(name)}&start=${start}&stop=${stop}`;
    const buckets = 600;
    let r, raw = null;
    try {
      r = await api(`${base}&max_points=${buckets}`);
      const counts = r.columns[`${name}__count`] || [];
      const total = counts.reduce((a, b) => a + (b || 0), 0);
      if (total > 0 && total <= RAW_MAX) raw = await api(base);
    } catch (e) {
      if (detail === d) $("#hist-info").textContent = `history unavailable: ${e.message}`;
      return;
    }
    if (detail !== d || d.channel !== name || d.histSeq !== my) return;
    const width = range / buckets; // s
    const period = Number(d.info.expected_period_s) || 1;
    const x = [], mean = [], lo = [], hi = [];
    let maxStep, how;
    if (raw) {
      const c = raw.columns;
      for (let i = 0; i < c.time.length; i++) {
        const [m, a, b] = scalar(c[name][i]);
        x.push(c.time[i] / NS); mean.push(m); lo.push(a); hi.push(b);
      }
      maxStep = GAP_PERIODS * period;
      how = `${x.length} samples from ${raw.source}`;
    } else {
      const c = r.columns;
      for (let i = 0; i < c.time.length; i++) {
        if (!c[`${name}__count`][i]) continue;
        x.push(c.time[i] / NS + width / 2); // a bucket's values belong to its middle
        mean.push(c[`${name}__mean`][i]); lo.push(c[`${name}__min`][i]); hi.push(c[`${name}__max`][i]);
      }
      maxStep = Math.max(GAP_PERIODS * period, 2 * width);
      how = `${x.length} buckets of ${width.toFixed(1)} s from ${r.source}`;
    }
    const [gx, gys] = withGaps(x, [mean, lo, hi], maxStep);
    // the window's ends, without values: the axis shows [start, stop) whatever the data covers
    gx.unshift(start / NS); gx.push(stop / NS);
    for (const g of gys) { g.unshift(null); g.push(null); }
    if (d.histPlot) d.histPlot.destroy();
    d.histPlot = makePlot("#hist-plot", d.chans.get(name), ["mean", "min", "max"], [gx, ...gys]);
    $("#hist-plot").dataset.points = String(x.length);
    $("#hist-info").textContent = `${how}; min/max dashed; no data for over ` +
      `${maxStep.toFixed(maxStep < 10 ? 1 : 0)} s is a gap`;
  }

  window.addEventListener("resize", () => {
    if (!detail) return;
    for (const [p, sel] of [[detail.livePlot, "#live-plot"], [detail.histPlot, "#hist-plot"]]) {
      if (p) p.setSize({ width: Math.max(300, $(sel).clientWidth - 2), height: 240 });
    }
  });

  // ------------------------------------------------------------------ start

  // Once every script of the page has run: the views after this one (events.js ... dashboards.js)
  // hear the session and the route only if they listen by then, and a quick answer from the
  // console could otherwise come while a later script is still on its way.
  function boot() {
    if (!token) { showLogin(); return; }
    fetch("/api/status", { headers: { Authorization: `Bearer ${token}` } }).then(async (r) => {
      if (r.ok) start(await r.json()); else logout(r.status === 401 ? "Log in again." : "");
    }, () => showLogin("The console does not answer."));
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
