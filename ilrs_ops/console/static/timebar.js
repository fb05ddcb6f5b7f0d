/* ILRS operations console: the time conductor, the one time control of the page (the bar under
 * the header). Realtime (the default) is the last `span` seconds, following the clock; archive
 * is a fixed UTC window [start, stop). Every view that shows time-windowed data (instrument
 * history and events, trending, the event log, the packet inspector) reads its window here
 * and reloads on `ilrs:time`. The window is part of the URL hash, after the view's own part:
 * #/events?range=900 (realtime, last 15 min) or #/i/sup-rover-1/batt_v?start=ISO&stop=ISO
 * (archive); realtime over the default span adds nothing. Moving to another view keeps it.
 * Key r (outside a text field) goes back to realtime. */
"use strict";
(() => {
  const { $, el, isoUtc, parseUtc } = window.ilrsDom; // dom.js
  const NS = 1e9;
  const PRESETS = [[300, "5 min"], [900, "15 min"], [3600, "1 h"], [21600, "6 h"], [86400, "1 day"]];
  const DEFAULT_SPAN = 3600;
  const KEYS = ["range", "start", "stop"]; // the hash's time parameters
  const REALTIME = { live: true, span: DEFAULT_SPAN, start: null, stop: null };

  let token = null;
  let state = { ...REALTIME };
  let told = JSON.stringify(state); // what the views were last told
  // A history entry the conductor has seen (set() made it, or fromHash read it) is stamped:
  // going Back to it restores its own time, even realtime over the default span (no params).
  const STAMP = { ilrsTime: true };
  const stamped = () => Boolean(history.state && history.state.ilrsTime);

  const spanText = (s) => {
    const p = PRESETS.find(([v]) => v === s);
    if (p) return p[1];
    return s % 3600 === 0 ? `${s / 3600} h` : s % 60 === 0 ? `${s / 60} min` : `${s} s`;
  };
  const isoParam = (ns) => new Date(ns / 1e6).toISOString().replace(".000Z", "Z");
  // "2026-12-03 22:51:58 – 23:06:58 UTC"; the second date only when the day changes
  function rangeText(start, stop) {
    const a = isoUtc(start / NS).slice(0, -1), b = isoUtc(stop / NS).slice(0, -1);
    return `${a} – ${a.slice(0, 10) === b.slice(0, 10) ? b.slice(11) : b} UTC`;
  }

  // ------------------------------------------------------------------ the hash

  function split(hash) {
    const i = hash.indexOf("?");
    const path = i < 0 ? hash : hash.slice(0, i);
    const rest = i < 0 ? [] : hash.slice(i + 1).split("&").filter(Boolean);
    return { path, rest };
  }
  // The time in a hash, or null when it has none. (The view's own parameters are left alone:
  // no URLSearchParams round trip, which would escape the "/" and "," of the trend's p=.)
  function parse(hash) {
    const q = {};
    for (const kv of split(hash).rest) {
      const [k, v = ""] = kv.split("=");
      if (KEYS.includes(k)) q[k] = decodeURIComponent(v);
    }
    if (!Object.keys(q).length) return null;
    const t = (v) => { const ms = v ? Date.parse(v) : NaN; return Number.isNaN(ms) ? null : ms * 1e6; };
    const start = t(q.start), stop = t(q.stop);
    const span = q.range ? Math.max(1, Math.round(Number(q.range))) || DEFAULT_SPAN : null;
    if (start !== null && stop !== null && stop > start) return { live: false, span, start, stop };
    return { live: true, span: span || DEFAULT_SPAN, start: null, stop: null };
  }
  function query(s = state) {
    if (!s.live) return `start=${isoParam(s.start)}&stop=${isoParam(s.stop)}`;
    return s.span === DEFAULT_SPAN ? "" : `range=${s.span}`;
  }
  function withTime(hash, s = state) {
    const { path, rest } = split(hash || "#/");
    const own = rest.filter((kv) => !KEYS.includes(kv.split("=")[0]));
    const q = query(s);
    const all = q ? [...own, q] : own;
    return all.length ? `${path}?${all.join("&")}` : path;
  }

  // The hash changed: its time, or (a link to another view, without one) the time kept,
  // written back into the URL so that it stays shareable. Runs before console.js routes (this
  // script is loaded first).
  function fromHash() {
    const got = parse(location.hash);
    if (got) state = { ...got, span: got.span || state.span }; // archive: the span to go back to
    else if (stamped()) state = { ...REALTIME };
    history.replaceState(STAMP, "", withTime(location.hash));
    paint();
    const now = JSON.stringify(state);
    if (now !== told) {
      told = now;
      window.dispatchEvent(new CustomEvent("ilrs:time", { detail: { ...state } }));
    }
  }
  window.addEventListener("hashchange", fromHash);

  function set(next) {
    const hash = withTime(location.hash, next);
    $("#tb-msg").textContent = "";
    if (hash === location.hash) { fromHash(); return; }
    location.hash = hash; // a new history entry, stamped before its hashchange arrives
    history.replaceState(STAMP, "", hash);
  }

  window.ilrsTime = {
    /** The conductor's state: {live, span (s), start, stop (ns, archive only)}. */
    state: () => ({ ...state }),
    /** The window to show now, in ns: [start, stop), and whether it follows the clock. */
    window() {
      if (!state.live) return { live: false, start: state.start, stop: state.stop, span: state.span };
      const stop = Date.now() * 1e6;
      return { live: true, start: stop - state.span * NS, stop, span: state.span };
    },
    /** The hash's time parameters ("" for realtime over the default span). */
    query: () => query(),
    /** ``hash`` with the conductor's time parameters in place of its own. */
    withTime: (hash) => withTime(hash),
    set,
    realtime: () => set({ ...state, live: true, start: null, stop: null }),
    /** Archive the window [start, stop) in ns. */
    archive: (start, stop) => set({ ...state, live: false, start, stop }),
  };

  // ------------------------------------------------------------------ the bar

  const bar = el("div", { id: "timebar", class: "timebar", role: "region",
    "aria-label": "Time conductor", hidden: "" },
  el("span", { id: "tb-mode", class: "tb-mode", role: "status", "aria-live": "polite" }),
  el("div", { role: "group", "aria-label": "Time mode", class: "tb-group" },
    el("button", { type: "button", id: "tb-realtime", "aria-keyshortcuts": "r",
      "aria-label": "Realtime", title: "follow the clock (key: r, outside a text field)" },
    "Realtime ", el("kbd", { "aria-hidden": "true", text: "r" })),
    el("button", { type: "button", id: "tb-archive", text: "Archive",
      title: "hold the window shown now still" })),
  el("div", { role: "group", "aria-label": "Window span", id: "tb-presets", class: "tb-group" },
    el("span", { class: "tb-label", "aria-hidden": "true", text: "Last" }),
    ...PRESETS.map(([s, t]) => el("button", { type: "button", "data-range": String(s),
      "aria-pressed": "false", "aria-label": `Last ${t}`, text: t }))),
  el("form", { id: "tb-form", class: "tb-form", novalidate: "", autocomplete: "off" },
    el("label", { for: "tb-start", title: "UTC, as 2026-12-04 00:10:00" }, "From"),
    el("input", { id: "tb-start", size: "19", spellcheck: "false", placeholder: "2026-12-04 00:10:00",
      "aria-describedby": "tb-msg" }),
    el("label", { for: "tb-stop", title: "UTC; empty: now" }, "To"),
    el("input", { id: "tb-stop", size: "19", spellcheck: "false", placeholder: "now",
      "aria-describedby": "tb-msg" }),
    el("button", { type: "submit", id: "tb-apply", text: "Show range" })),
  el("span", { id: "tb-msg", class: "error tb-msg", role: "alert" }));
  document.querySelector("header.bar").after(bar);

  function paint() {
    const live = state.live;
    document.body.dataset.time = live ? "realtime" : "archive";
    const mode = $("#tb-mode");
    mode.dataset.mode = live ? "realtime" : "archive";
    mode.textContent = live ? `REALTIME · last ${spanText(state.span)}`
      : `ARCHIVE · ${rangeText(state.start, state.stop)}`;
    mode.title = live ? "the plots and tables follow the clock"
      : "a fixed window: live data does not move it; r or Realtime goes back";
    $("#tb-realtime").setAttribute("aria-pressed", String(live));
    $("#tb-archive").setAttribute("aria-pressed", String(!live));
    const width = live ? state.span : (state.stop - state.start) / NS;
    for (const b of bar.querySelectorAll("#tb-presets button")) {
      b.setAttribute("aria-pressed", String(Number(b.dataset.range) === width));
    }
    if (!bar.contains(document.activeElement) || document.activeElement.tagName !== "INPUT") {
      $("#tb-start").value = live ? "" : isoUtc(state.start / NS).replace("Z", "");
      $("#tb-stop").value = live ? "" : isoUtc(state.stop / NS).replace("Z", "");
    }
  }

  $("#tb-realtime").addEventListener("click", () => window.ilrsTime.realtime());
  $("#tb-archive").addEventListener("click", () => {
    if (!state.live) return;
    const w = window.ilrsTime.window();
    window.ilrsTime.archive(Math.round(w.start / 1e6) * 1e6, Math.round(w.stop / 1e6) * 1e6);
  });
  // A preset keeps the mode: realtime follows the last span; archive holds the last span now.
  $("#tb-presets").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-range]");
    if (!b) return;
    const span = Number(b.dataset.range);
    if (state.live) { set({ ...state, span }); return; }
    const stop = Math.round(Date.now() / 1e3) * 1e9;
    set({ live: false, span, start: stop - span * NS, stop });
  });

  function bad(input, text) {
    $("#tb-msg").textContent = text;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
  $("#tb-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const a = $("#tb-start"), b = $("#tb-stop");
    a.removeAttribute("aria-invalid");
    b.removeAttribute("aria-invalid");
    const example = "write it as 2026-12-04 00:10:00 (UTC)";
    const start = parseUtc(a.value);
    const stop = parseUtc(b.value);
    if (start === null) { bad(a, `From: give the window's start; ${example}`); return; }
    if (Number.isNaN(start)) { bad(a, `From: “${a.value.trim()}” is not a UTC time; ${example}`); return; }
    if (Number.isNaN(stop)) {
      bad(b, `To: “${b.value.trim()}” is not a UTC time; ${example}, or leave it empty for now`);
      return;
    }
    const end = stop === null ? Math.round(Date.now() / 1e3) * 1e9 : stop;
    if (end <= start) { bad(b, "To must be after From: the window is [From, To)"); return; }
    window.ilrsTime.archive(start, end);
  });

  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "r" || ev.ctrlKey || ev.metaKey || ev.altKey || !token) return;
    const typing = ev.target.closest && ev.target.closest("input, select, textarea, dialog, [contenteditable]");
    if (typing) return;
    ev.preventDefault();
    window.ilrsTime.realtime();
  });

  window.addEventListener("ilrs:session", (ev) => {
    token = ev.detail.token;
    bar.hidden = !token;
  });

  const first = parse(location.hash);
  state = first ? { ...first, span: first.span || DEFAULT_SPAN } : { ...REALTIME };
  history.replaceState(STAMP, "", location.href);
  told = JSON.stringify(state);
  paint();
})();
