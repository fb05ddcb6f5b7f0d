/* ILRS operations console: the station-wide event log (#/events) and the header's parameter
 * search. The log is GET /api/events (limit transitions, gaps, detector triggers, acks,
 * shelves, profile uploads), GET /api/commands (one row per command, at its latest stage) and,
 * for operators, GET /api/replays; live from the WebSocket through console.js (`ilrs:event`,
 * `ilrs:command`, `ilrs:replay`). The API scopes all three by role. The search box asks
 * GET /api/search and opens #/i/{instrument}/{channel}, or with "+ trend" (Shift+Enter) adds
 * the channel to the trend (trend.js). */
"use strict";
(() => {
  const { $, el } = window.ilrsDom; // dom.js
  const STORE_KINDS = ["limit", "gap", "detector", "ack", "shelve", "unshelve", "profile", "dashboard"];
  const KINDS = [...STORE_KINDS, "command", "replay"];
  const KEEP = 2000; // rows on the page
  const AGE_MS = 5000; // how often a live window drops the rows that left it
  let token = null;
  let you = null;
  let shown = false;
  let loadSeq = 0; // a newer load wins over an older one still in flight
  const rows = new Map(); // key -> {time_ns, partner, instrument, kind, channel, what, state}
  let filter = null; // {partner, instrument, kinds: Set, start_ns, stop_ns | null (live)}

  async function get(path) {
    const r = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
    let doc = null;
    try { doc = await r.json(); } catch (e) { /* not JSON */ }
    if (!r.ok) {
      const d = doc && doc.detail;
      throw new Error(`${r.status}${typeof d === "string" ? `: ${d}` : ""}`);
    }
    return doc;
  }

  const utc = (ns) => window.ilrsDom.isoUtc(ns / 1e9, true);

  // ------------------------------------------------------------------ session and route

  window.addEventListener("ilrs:session", (ev) => {
    token = ev.detail.token;
    you = ev.detail.you;
    rows.clear();
    $("#nav").hidden = !token;
    $("#search-form").hidden = !token;
    closeResults();
    if (!token) { $("#eventlog").hidden = true; shown = false; render(); return; }
    loadFilters();
  });

  window.addEventListener("ilrs:route", (ev) => {
    const want = ev.detail.view === "events";
    const nav = $("#nav-events");
    if (want) nav.setAttribute("aria-current", "page"); else nav.removeAttribute("aria-current");
    $("#eventlog").hidden = !want;
    if (want && !shown) { shown = true; apply(); $("#eventlog-title").focus(); }
    shown = want;
  });
  window.addEventListener("ilrs:resync", () => { if (shown) load(); });

  // ------------------------------------------------------------------ filters

  function kindBox(kind) {
    const id = `ev-kind-${kind}`;
    const box = el("input", { type: "checkbox", id, value: kind });
    box.checked = true;
    return el("label", { for: id, class: "kind", "data-kind": kind }, box, ` ${kind}`);
  }
  const kindsEl = $("#ev-kinds");
  for (const k of KINDS) kindsEl.append(kindBox(k));

  let instruments = []; // [{instrument, partner}] the token sees tiles of
  async function loadFilters() {
    let status;
    try { status = await get("/api/status"); } catch (e) { return; }
    instruments = status.partners.flatMap((p) => p.instruments.map((t) =>
      ({ instrument: t.instrument, partner: p.partner })));
    const ps = $("#ev-partner");
    const keep = ps.value;
    ps.replaceChildren(el("option", { value: "", text: "all" }),
      ...status.partners.map((p) => el("option", { value: p.partner, text: p.partner })));
    ps.value = [...ps.options].some((o) => o.value === keep) ? keep : "";
    fillInstruments();
    const replayBox = $("#ev-kind-replay").parentElement;
    replayBox.hidden = !(you && you.role === "operator"); // replays are the operators' business
  }
  function fillInstruments() {
    const is = $("#ev-instrument");
    const keep = is.value;
    const partner = $("#ev-partner").value;
    is.replaceChildren(el("option", { value: "", text: "all" }), ...instruments
      .filter((i) => !partner || i.partner === partner)
      .map((i) => el("option", { value: i.instrument, text: i.instrument })));
    is.value = [...is.options].some((o) => o.value === keep) ? keep : "";
  }
  $("#ev-partner").addEventListener("change", () => { fillInstruments(); apply(); });
  $("#ev-instrument").addEventListener("change", apply);
  kindsEl.addEventListener("change", apply);
  $("#ev-filters").addEventListener("submit", (ev) => { ev.preventDefault(); apply(); });
  window.addEventListener("ilrs:time", () => { if (shown) apply(); }); // timebar.js

  // The window is the time conductor's (timebar.js): realtime slides (rows older than it age
  // out, new ones come live); archive is [start, stop) and stands still.
  function apply() {
    $("#ev-msg").textContent = "";
    const kinds = new Set([...kindsEl.querySelectorAll("input:checked")].map((b) => b.value));
    const f = { partner: $("#ev-partner").value, instrument: $("#ev-instrument").value, kinds };
    const w = window.ilrsTime.window();
    f.start_ns = w.start;
    f.window_ns = w.live ? w.stop - w.start : null;
    f.stop_ns = w.live ? null : w.stop;
    filter = f;
    const live = f.stop_ns === null;
    const mode = $("#ev-mode");
    mode.textContent = live ? "LIVE" : "ARCHIVE";
    mode.dataset.live = String(live);
    mode.title = live ? "new events appear as they happen" : "a past window: nothing new arrives";
    load();
  }

  // ------------------------------------------------------------------ rows

  function matches(r) {
    const f = filter;
    if (!f || !f.kinds.has(r.kind)) return false;
    if (f.partner && r.partner !== f.partner) return false;
    if (f.instrument && r.instrument !== f.instrument) return false;
    if (r.time_ns < (f.window_ns ? Date.now() * 1e6 - f.window_ns : f.start_ns)) return false;
    return f.stop_ns === null || r.time_ns < f.stop_ns;
  }

  function eventRow(e) {
    const text = window.ilrsEventText ? window.ilrsEventText(e) : e.kind;
    return {
      key: `e/${e.instrument}/${e.time_ns}/${e.kind}/${e.channel || ""}`,
      time_ns: e.time_ns, partner: e.partner || partnerOf(e.instrument),
      instrument: e.instrument, kind: e.kind, channel: e.channel || "", what: text,
      state: e.kind === "limit" ? String(e.to_state) : "",
    };
  }
  function partnerOf(id) {
    const i = instruments.find((x) => x.instrument === id);
    return i ? i.partner : "";
  }
  function commandRow(c) {
    const args = Object.entries(c.args || {}).map(([k, v]) => `${k}=${v}`).join(" ");
    const stages = (c.stages || []).map((s) => s.stage).join(" → ");
    const by = c.requested_by ? ` by ${c.requested_by}` : "";
    const why = c.reason ? `: ${c.reason}` : "";
    return {
      key: `c/${c.id}`, time_ns: c.requested_ns, partner: c.partner, instrument: c.instrument,
      kind: "command", channel: "", state: c.state,
      what: `${c.command}${args ? ` ${args}` : ""}${by} · ${c.state}${why}` +
        (stages ? ` (${stages})` : ""),
    };
  }
  function replayRow(rp) {
    const prog = rp.total ? ` ${rp.sent} / ${rp.total} messages` : "";
    return {
      key: `r/${rp.id}`, time_ns: rp.started_ns, partner: "", instrument: "", kind: "replay",
      channel: "", state: rp.state,
      what: `replay ${rp.recording} into ${rp.to} at ${rp.speed}${rp.speed === "max" ? "" : "×"}` +
        ` by ${rp.by} · ${rp.state}${prog}${rp.error ? `: ${rp.error}` : ""}`,
    };
  }

  async function load() {
    if (!token || !filter) return;
    const f = filter;
    const seq = ++loadSeq;
    const q = new URLSearchParams({ start: String(Math.floor(f.start_ns)), limit: String(KEEP) });
    if (f.stop_ns !== null) q.set("stop", String(Math.floor(f.stop_ns)));
    if (f.partner) q.set("partner", f.partner);
    if (f.instrument) q.set("instrument", f.instrument);
    const storeKinds = STORE_KINDS.filter((k) => f.kinds.has(k));
    q.set("kind", storeKinds.join(","));
    const asks = [];
    const notes = [];
    if (storeKinds.length && you && you.role !== "viewer") {
      asks.push(get(`/api/events?${q}`).then((d) => {
        if (d.truncated) notes.push(`only the newest ${KEEP} events`);
        return d.events.map(eventRow);
      }));
    }
    if (f.kinds.has("command")) {
      const c = new URLSearchParams({ since: String(Math.floor(f.start_ns)), limit: "1000" });
      if (f.stop_ns !== null) c.set("stop", String(Math.floor(f.stop_ns)));
      if (f.instrument) c.set("instrument", f.instrument);
      asks.push(get(`/api/commands?${c}`).then((d) => d.commands.map(commandRow)));
    }
    if (f.kinds.has("replay") && you && you.role === "operator" && !f.partner && !f.instrument) {
      asks.push(get("/api/replays").then((d) => d.replays.map(replayRow)));
    }
    $("#ev-count").textContent = "loading…";
    arrived = new Map(); // what comes live while the answers are on their way
    let got;
    try { got = await Promise.all(asks); } catch (e) {
      if (seq === loadSeq) { $("#ev-msg").textContent = `The log could not be read: ${e.message}`; }
      return;
    }
    if (seq !== loadSeq) return;
    rows.clear();
    for (const list of got) for (const r of list) if (matches(r)) rows.set(r.key, r);
    // Kept over the answers: newer (a command's later stage), or after the store was read.
    for (const [key, r] of arrived) if (matches(r)) rows.set(key, r);
    arrived = null;
    render(notes);
  }

  let arrived = null; // Map of live rows during a load, which then resets ``rows``
  function put(r, known = false) {
    if (!shown || (!known && !matches(r))) return;
    rows.set(r.key, r);
    if (arrived) arrived.set(r.key, r);
    render();
  }
  window.addEventListener("ilrs:event", (ev) => {
    const e = ev.detail;
    if (e.time_ns === undefined || !STORE_KINDS.includes(e.kind)) return;
    put(eventRow(e));
  });
  window.addEventListener("ilrs:command", (ev) => {
    const r = commandRow(ev.detail);
    put(r, rows.has(r.key));
  });
  window.addEventListener("ilrs:replay", (ev) => {
    if (filter && (filter.partner || filter.instrument)) return;
    const r = replayRow(ev.detail);
    put(r, rows.has(r.key));
  });

  // A live window slides even when nothing arrives.
  setInterval(() => { if (shown && filter && filter.window_ns) render(); }, AGE_MS);

  let painting = false;
  function render(notes = []) {
    if (painting) return;
    painting = true;
    requestAnimationFrame(() => { painting = false; paint(notes); });
  }
  function paint(notes) {
    for (const [key, r] of rows) if (!matches(r)) rows.delete(key); // aged out of the window
    const list = [...rows.values()].sort((a, b) => b.time_ns - a.time_ns);
    for (const r of list.slice(KEEP)) rows.delete(r.key);
    const body = $("#ev-list");
    const old = new Map([...body.children].map((tr) => [tr.dataset.key, tr]));
    const trs = list.slice(0, KEEP).map((r) => {
      const tr = el("tr", { "data-key": r.key, "data-kind": r.kind, "data-state": r.state },
        el("td", { class: "num" }, el("time", { datetime: new Date(r.time_ns / 1e6).toISOString(),
          text: utc(r.time_ns) })),
        el("td", { text: r.partner || "—" }),
        el("td", {}, r.instrument ? el("a", { href: `#/i/${encodeURIComponent(r.instrument)}` +
          (r.channel ? `/${encodeURIComponent(r.channel)}` : ""), text: r.instrument }) : "—"),
        el("td", {}, el("span", { class: `kind k-${r.kind}`, text: r.kind })),
        el("td", { text: r.channel || "" }),
        el("td", { class: "what", text: r.what }));
      const was = old.get(r.key);
      if (was && was.innerHTML === tr.innerHTML) return was; // keeps focus on a link in it
      if (was || !old.size) return tr;
      tr.classList.add("fresh");
      return tr;
    });
    body.replaceChildren(...trs);
    $("#ev-empty").hidden = trs.length > 0;
    const viewer = you && you.role === "viewer" ? " (viewers: commands only)" : "";
    $("#ev-count").textContent = `${trs.length} entr${trs.length === 1 ? "y" : "ies"}` +
      `${viewer}${notes.length ? ` · ${notes.join(", ")}` : ""}`;
  }

  // ------------------------------------------------------------------ parameter search

  const box = $("#search");
  const results = $("#search-results");
  let searchSeq = 0;
  let timer = null;
  let active = -1;
  let shownQ = null; // the query the listed results answer

  function closeResults() {
    results.hidden = true;
    results.replaceChildren();
    shownQ = null;
    box.setAttribute("aria-expanded", "false");
    box.removeAttribute("aria-activedescendant");
    active = -1;
  }
  function mark(k) {
    const opts = [...results.children].filter((o) => o.dataset.instrument);
    if (!opts.length) return;
    active = (k + opts.length) % opts.length;
    opts.forEach((o, i) => o.setAttribute("aria-selected", String(i === active)));
    box.setAttribute("aria-activedescendant", opts[active].id);
    opts[active].scrollIntoView({ block: "nearest" });
  }
  function choose(o, trend = false) { // trend: add it to the trend (trend.js), not open it
    if (trend) window.ilrsTrend.add(o.dataset.instrument, o.dataset.channel);
    else {
      location.hash = `#/i/${encodeURIComponent(o.dataset.instrument)}/` +
        encodeURIComponent(o.dataset.channel);
    }
    box.value = "";
    closeResults();
    box.blur();
  }
  async function search() {
    const q = box.value.trim();
    const seq = ++searchSeq;
    if (!q) { closeResults(); return; }
    let d;
    try {
      d = await get(`/api/search?${new URLSearchParams({ q, limit: "20" })}`);
    } catch (e) { d = { results: [], error: e.message }; }
    if (seq !== searchSeq || !token) return;
    const opts = d.results.map((h, i) => {
      const o = el("li", { role: "option", id: `search-opt-${i}`, "aria-selected": "false",
        "data-instrument": h.instrument, "data-channel": h.channel },
      el("span", { class: "s-name", text: h.channel }),
      el("span", { class: "s-units", text: h.units ? `[${h.units}]` : "" }),
      el("span", { class: "s-inst", text: `${h.instrument} · ${h.partner}` }),
      el("span", { class: "s-desc", text: h.description || "" }),
      el("span", { class: "s-trend", text: "+ trend", title: "add to the trend (Shift+Enter)" }));
      o.addEventListener("mousedown", (ev) => {
        ev.preventDefault();
        choose(o, Boolean(ev.target.closest(".s-trend")));
      });
      return o;
    });
    if (!opts.length) {
      opts.push(el("li", { class: "s-none", text: d.error ||
        (you && you.role === "viewer" ? "Viewers read no parameters." : `Nothing matches “${q}”.`) }));
    } else if (d.truncated) {
      opts.push(el("li", { class: "s-none", text: `${d.total} found; the best 20 shown` }));
    }
    results.replaceChildren(...opts);
    shownQ = q;
    results.hidden = false;
    box.setAttribute("aria-expanded", "true");
    active = -1;
  }
  box.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 150); });
  box.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown") { ev.preventDefault(); mark(active + 1); }
    else if (ev.key === "ArrowUp") { ev.preventDefault(); mark(active - 1); }
    else if (ev.key === "Escape") { ev.stopPropagation(); box.value = ""; closeResults(); }
    else if (ev.key === "Enter" && ev.shiftKey) {
      ev.preventDefault();
      const opts = [...results.children].filter((o) => o.dataset.instrument);
      if (opts.length) choose(opts[Math.max(active, 0)], true);
    }
  });
  $("#search-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearTimeout(timer);
    if (shownQ !== box.value.trim()) await search(); // Enter before the results came
    const opts = [...results.children].filter((o) => o.dataset.instrument);
    if (opts.length) choose(opts[Math.max(active, 0)]);
  });
  box.addEventListener("blur", () => setTimeout(closeResults, 100));
  document.addEventListener("keydown", (ev) => {
    const typing = ev.target.closest && ev.target.closest("input, select, textarea, dialog");
    if (ev.key === "/" && token && !typing) { ev.preventDefault(); box.focus(); }
  });
})();
