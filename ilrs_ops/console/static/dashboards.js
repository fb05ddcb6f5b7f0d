/* ILRS operations console: Dashboards (#/dashboards, #/dashboards/{id}). Named layouts of
 * parameter widgets (value readout, plot, alarm list) on a 12-column grid, kept on the server
 * (GET/POST /api/dashboards, GET/PUT/DELETE /api/dashboards/{id}); the URL of one is its share
 * link. Edit mode adds, removes, moves and resizes widgets with buttons (keyboard, no drag).
 * Values and plots follow the live feed the tiles use (console.js hands status updates over as
 * `ilrs:status`) and are drawn with the instrument page's own code (window.ilrsShow). In the
 * time bar's archive (timebar.js, `ilrs:time`) they show its window from the store instead:
 * plots the window's history, values the last sample in it, both marked ARCHIVE; back in
 * realtime they are live again. The API scopes everything: a viewer's widgets show status
 * only, as its tiles do. */
"use strict";
(() => {
  const { $, el, pushPoint } = window.ilrsDom; // dom.js
  const show = window.ilrsShow; // console.js: value format and plots
  const NS = 1e9;
  const COLS = 12;
  const LIVE_KEEP = 600; // points of a live plot
  const SEED_S = 120; // a plot starts with this much history
  const SIZES = { value: [3, 2], plot: [6, 3], alarms: [4, 3] };
  const SEV = { red: 0, invalid: 1, yellow: 2, nominal: 3 };
  const BUCKETS = 600; // an archive plot's min/max/mean buckets over the window
  const RAW_MAX = 2000; // up to this many samples in the window: the samples themselves

  let token = null;
  let you = null;
  let shown = false;
  let board = null; // the dashboard as stored (GET), or null on the list
  let draft = null; // widgets being edited, or null when viewing
  let views = []; // per widget shown: {w, box, plot, live}
  const tiles = new Map(); // instrument -> status tile (GET /api/status, then ilrs:status)
  const infos = new Map(); // instrument -> Promise of its detail (null: may not read)
  const alarms = new Map(); // "instrument/channel" -> alarm
  const lives = new Map(); // "instrument/channel" -> Promise of its live series {x, ys, period}
  const windows = new Map(); // "instrument/channel" -> Promise of its archive window's data
  const archive = () => !window.ilrsTime.state().live; // timebar.js
  let archived = false; // whether the widgets shown show the archive window
  let seq = 0;
  let routed = null; // the hash path (no time parameters) shown

  const canEdit = () => Boolean(you) && you.role !== "viewer";
  const mayChange = (b) => canEdit() && (you.role === "operator" || b.owner === you.name);

  async function call(method, path, body) {
    const opts = { method, headers: { Authorization: `Bearer ${token}` } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(path, opts);
    let doc = null;
    try { doc = await r.json(); } catch (e) { /* not JSON */ }
    return { ok: r.ok, status: r.status, doc };
  }
  function why(res) {
    const d = res.doc && res.doc.detail;
    if (typeof d === "string") return `${res.status}: ${d}`;
    if (Array.isArray(d)) return `${res.status}: ${d.map((e) => `${e.loc.slice(1).join(".")}: ${e.msg}`).join("; ")}`;
    return String(res.status);
  }

  // ------------------------------------------------------------------ the section

  const section = el("section", { id: "dashboards", class: "dashboards", hidden: "",
    "aria-labelledby": "db-title" },
  el("div", { id: "db-list-view" },
    el("div", { class: "row" },
      el("h2", { id: "db-title", tabindex: "-1", text: "Dashboards" }),
      el("form", { id: "db-new", class: "row", autocomplete: "off" },
        el("label", { for: "db-new-name" }, "New dashboard"),
        el("input", { id: "db-new-name", size: "28", maxlength: "80", placeholder: "name",
          required: "" }),
        el("button", { type: "submit", id: "db-create", text: "Create" }))),
    el("p", { id: "db-msg", class: "error", role: "alert" }),
    el("table", { id: "db-table", class: "db-table" },
      el("thead", {}, el("tr", {}, ...["Name", "Owner", "Seen by", "Widgets", "Instruments",
        "Updated (UTC)"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", { id: "db-list" })),
    el("p", { id: "db-empty", class: "meta", hidden: "", text: "No dashboards yet." })),
  el("div", { id: "db-view", hidden: "" },
    el("div", { class: "row" },
      el("a", { href: "#/dashboards", id: "db-back", text: "← All dashboards" }),
      el("h2", { id: "db-name", tabindex: "-1" }),
      el("span", { id: "db-meta", class: "meta" }),
      el("span", { class: "db-acts" },
        el("button", { type: "button", id: "db-edit", text: "Edit" }),
        el("button", { type: "button", id: "db-save", hidden: "", text: "Save" }),
        el("button", { type: "button", id: "db-cancel", hidden: "", text: "Cancel" }),
        el("button", { type: "button", id: "db-delete", hidden: "", text: "Delete" }))),
    el("p", { id: "db-view-msg", class: "error", role: "alert" }),
    el("form", { id: "db-editor", class: "row db-editor", hidden: "", autocomplete: "off" },
      el("label", {}, "Name ", el("input", { id: "db-rename", size: "24", maxlength: "80" })),
      el("label", {}, "Seen by ", el("select", { id: "db-visibility" },
        el("option", { value: "shared", text: "everyone it may show" }),
        el("option", { value: "private", text: "me (and operators)" }))),
      el("label", {}, "Widget ", el("select", { id: "db-kind" },
        el("option", { value: "value", text: "value" }), el("option", { value: "plot", text: "plot" }),
        el("option", { value: "alarms", text: "alarm list" }))),
      el("label", { for: "db-param" }, "Parameter"),
      el("input", { id: "db-param", size: "30", list: "db-options", spellcheck: "false",
        placeholder: "instrument/channel, or search words" }),
      el("datalist", { id: "db-options" }),
      el("button", { type: "submit", id: "db-add", text: "Add widget" }),
      el("span", { class: "help", text: "alarm list: an instrument, or empty for all" })),
    el("div", { id: "db-grid", class: "db-grid", role: "list", "aria-label": "Widgets" }),
    el("p", { id: "db-none", class: "meta", hidden: "", text: "No widgets: Edit, then add one." })));
  $("#main").append(section);

  // ------------------------------------------------------------------ session and route

  window.addEventListener("ilrs:session", (ev) => {
    token = ev.detail.token;
    you = ev.detail.you;
    tiles.clear(); infos.clear(); alarms.clear();
    if (!token) { section.hidden = true; shown = false; routed = null; close(); }
  });

  window.addEventListener("ilrs:route", (ev) => {
    const want = ev.detail.view === "dashboards";
    const nav = $("#nav-dashboards");
    if (want) nav.setAttribute("aria-current", "page"); else nav.removeAttribute("aria-current");
    section.hidden = !want;
    if (!want) { shown = false; routed = null; close(); return; }
    shown = true;
    const path = location.hash.split("?")[0]; // after "?": the time conductor's (timebar.js)
    if (path === routed) return; // only the time changed: a dashboard is live, it stays
    routed = path;
    const m = path.match(/^#\/dashboards\/([^/]+)$/);
    if (m) openBoard(decodeURIComponent(m[1])); else openList();
  });

  window.addEventListener("ilrs:status", (ev) => {
    const t = ev.detail;
    tiles.set(t.instrument, t);
    if (!board) return;
    for (const v of views) if (v.w.instrument === t.instrument) paint(v, t, true);
  });
  window.addEventListener("ilrs:event", (ev) => {
    const a = ev.detail.alarm;
    if (!a || !board) return;
    const key = `${a.instrument}/${a.channel}`;
    if (a.state === null || a.state === undefined) alarms.delete(key); else alarms.set(key, a);
    for (const v of views) if (v.w.kind === "alarms") paintAlarms(v);
  });
  // (the same seq: a new one would drop the widgets still being filled, e.g. a plot's data
  // when the WebSocket's first snapshot comes while a dashboard opened from its link loads)
  window.addEventListener("ilrs:resync", () => { if (board) loadLive(seq); });
  // The time bar moved: into (or within) the archive, the widgets show the new window; back
  // in realtime, they are live again. A new realtime span changes nothing here: live widgets
  // follow the feed, whatever the span.
  window.addEventListener("ilrs:time", () => {
    if (!board || (!archive() && !archived)) return;
    windows.clear();
    lives.clear();
    const my = ++seq;
    render();
    loadLive(my);
  });
  window.addEventListener("resize", () => { for (const v of views) fit(v); });

  function close() {
    for (const v of views) if (v.plot) v.plot.destroy();
    views = [];
    lives.clear();
    windows.clear();
    board = null;
    draft = null;
    $("#db-grid").replaceChildren();
  }

  // ------------------------------------------------------------------ the list

  async function openList() {
    close();
    const my = ++seq;
    $("#db-view").hidden = true;
    $("#db-list-view").hidden = false;
    $("#db-new").hidden = !canEdit();
    $("#db-title").focus();
    const res = await call("GET", "/api/dashboards");
    if (my !== seq) return;
    if (!res.ok) { $("#db-msg").textContent = `Dashboards unavailable: ${why(res)}`; return; }
    $("#db-msg").textContent = "";
    const rows = res.doc.dashboards.map((d) => el("tr", { "data-id": d.id },
      el("th", { scope: "row" }, el("a", { href: `#/dashboards/${encodeURIComponent(d.id)}`,
        text: d.name })),
      el("td", { text: d.owner }),
      el("td", { text: d.visibility === "private" ? "owner" : "everyone it may show" }),
      el("td", { class: "num", text: String(d.widgets) }),
      el("td", { text: d.instruments.join(", ") || "—" }),
      el("td", { text: new Date(d.updated_ns / 1e6).toISOString().slice(0, 19).replace("T", " ") })));
    $("#db-list").replaceChildren(...rows);
    $("#db-empty").hidden = rows.length > 0;
  }

  $("#db-new").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = $("#db-new-name").value.trim();
    if (!name) return;
    const res = await call("POST", "/api/dashboards", { name, widgets: [] });
    if (!res.ok) { $("#db-msg").textContent = `Not created: ${why(res)}`; return; }
    $("#db-new-name").value = "";
    editNext = res.doc.id;
    location.hash = `#/dashboards/${encodeURIComponent(res.doc.id)}`;
  });
  let editNext = null; // a dashboard just made opens in edit mode

  // ------------------------------------------------------------------ one dashboard

  async function openBoard(id) {
    close();
    const my = ++seq;
    $("#db-list-view").hidden = true;
    $("#db-view").hidden = false;
    $("#db-view-msg").textContent = "";
    $("#db-name").textContent = "…";
    $("#db-meta").textContent = "";
    for (const b of ["#db-edit", "#db-save", "#db-cancel", "#db-delete"]) $(b).hidden = true;
    $("#db-editor").hidden = true;
    const res = await call("GET", `/api/dashboards/${encodeURIComponent(id)}`);
    if (my !== seq) return;
    if (!res.ok) {
      $("#db-name").textContent = "Dashboard";
      $("#db-view-msg").textContent = res.status === 404
        ? "No such dashboard, or not one this token may see." : `Unavailable: ${why(res)}`;
      return;
    }
    board = res.doc;
    draft = null;
    if (editNext === id && mayChange(board)) startEdit();
    editNext = null;
    render();
    if (draft) $("#db-param").focus(); else $("#db-name").focus();
    loadLive(my);
  }

  // The tiles (values, health) and alarms as they are now; live updates follow.
  async function loadLive(my) {
    const [st, al] = await Promise.all([call("GET", "/api/status"), call("GET", "/api/alarms")]);
    if (my !== seq) return;
    if (st.ok) for (const p of st.doc.partners) for (const t of p.instruments) tiles.set(t.instrument, t);
    if (al.ok) { alarms.clear(); for (const a of al.doc.alarms) alarms.set(`${a.instrument}/${a.channel}`, a); }
    for (const v of views) {
      const t = tiles.get(v.w.instrument);
      if (t) paint(v, t, false);
      if (v.w.kind === "alarms") paintAlarms(v);
    }
  }

  function info(iid) {
    if (!infos.has(iid)) {
      infos.set(iid, call("GET", `/api/instruments/${encodeURIComponent(iid)}`)
        .then((r) => (r.ok ? r.doc : null), () => null));
    }
    return infos.get(iid);
  }

  function render() {
    const editing = draft !== null;
    const widgets = editing ? draft : board.widgets;
    $("#db-name").textContent = board.name;
    $("#db-meta").textContent = `by ${board.owner} · version ${board.version}` +
      `${board.visibility === "private" ? " · private" : ""}` +
      `${editing ? " · editing (not saved)" : ""}`;
    const changeable = mayChange(board);
    $("#db-edit").hidden = editing || !changeable;
    $("#db-save").hidden = !editing;
    $("#db-cancel").hidden = !editing;
    $("#db-delete").hidden = !editing;
    $("#db-delete").textContent = "Delete";
    delete $("#db-delete").dataset.armed;
    $("#db-editor").hidden = !editing;
    section.classList.toggle("db-editing", editing);
    archived = archive();
    section.dataset.time = archived ? "archive" : "realtime";
    for (const v of views) if (v.plot) v.plot.destroy();
    views = [];
    const grid = $("#db-grid");
    grid.replaceChildren();
    widgets.forEach((w, i) => {
      const v = { w, i, box: widgetBox(w, i, editing, widgets), plot: null, live: null };
      views.push(v);
      grid.append(v.box);
      fill(v);
    });
    $("#db-none").hidden = widgets.length > 0;
  }

  const label = (w) => w.title || (w.kind === "alarms" ? `Alarms · ${w.instrument || "all"}`
    : `${w.instrument} / ${w.channel}`);

  function overlaps(w, widgets) {
    return widgets.some((o) => o !== w && o.x < w.x + w.w && w.x < o.x + o.w &&
      o.y < w.y + w.h && w.y < o.y + o.h);
  }

  function widgetBox(w, i, editing, widgets) {
    const box = el("div", { class: "dw", role: "listitem", "data-kind": w.kind,
      "data-index": String(i), "data-instrument": w.instrument || "",
      "data-channel": w.channel || "", "aria-label": `${w.kind}: ${label(w)}` },
    el("div", { class: "dw-head" }, el("span", { class: "dw-title", text: label(w) })),
    el("div", { class: "dw-body" }));
    // in archive, say so where the values are: what they show is the window's, not now's
    // (an alarm list is always the alarms as they are now)
    box.dataset.mode = !archive() ? "live" : w.kind === "alarms" ? "now" : "archive";
    if (archive()) {
      box.querySelector(".dw-head").append(el("span", { class: "dw-mode",
        text: w.kind === "alarms" ? "now" : "archive",
        title: w.kind === "alarms" ? "the alarms as they are now, whatever the time bar's window"
          : "the time bar's archive window, from the store: live data does not move it" }));
    }
    box.style.gridColumn = `${w.x + 1} / span ${w.w}`;
    box.style.gridRow = `${w.y + 1} / span ${w.h}`;
    if (editing) {
      if (overlaps(w, widgets)) box.dataset.overlap = "true";
      const n = i + 1;
      const tool = (act, text, what) => el("button", { type: "button", "data-act": act,
        "aria-label": `${what} widget ${n}`, title: what, text });
      box.querySelector(".dw-head").append(el("span", { class: "dw-tools", role: "group",
        "aria-label": `Arrange widget ${n}` },
      tool("left", "←", "Move left"), tool("right", "→", "Move right"),
      tool("up", "↑", "Move up"), tool("down", "↓", "Move down"),
      tool("narrower", "−W", "Narrower"), tool("wider", "+W", "Wider"),
      tool("shorter", "−H", "Shorter"), tool("taller", "+H", "Taller"),
      tool("remove", "✕", "Remove")));
    }
    if (w.kind === "value") {
      box.querySelector(".dw-body").append(el("span", { class: "dw-value", text: "—" }),
        el("span", { class: "dw-health" }));
      if (archive()) box.querySelector(".dw-body").append(el("span", { class: "dw-at" }));
    } else if (w.kind === "plot") {
      box.querySelector(".dw-head").insertBefore(el("span", { class: "dw-health" }),
        box.querySelector(".dw-tools"));
      box.querySelector(".dw-body").append(el("div", { class: "dw-plot plot",
        id: `dw-plot-${i}`,
        "aria-label": `${archive() ? "Archive" : "Live"} plot of ${label(w)}` }));
    } else {
      box.querySelector(".dw-body").append(el("ul", { class: "dw-alarms" }));
    }
    return box;
  }

  async function fill(v) {
    const t = tiles.get(v.w.instrument);
    if (v.w.kind === "alarms") { paintAlarms(v); return; }
    if (t) paint(v, t, false);
    if (archive()) { fillArchive(v); return; }
    if (v.w.kind !== "plot") return;
    const my = seq;
    const d = await info(v.w.instrument);
    if (my !== seq || !views.includes(v)) return;
    if (!d) { statusOnly(v); return; }
    const name = v.w.channel;
    const chan = (d.channels || []).find((c) => c.name === name) || null;
    v.live = await series(v.w.instrument, name, Number(d.expected_period_s) || 1);
    if (my !== seq || !views.includes(v)) return;
    v.plot = show.makePlot(`#dw-plot-${v.i}`, chan, [name], [v.live.x, ...v.live.ys]);
    fit(v);
    if (tiles.get(v.w.instrument)) paint(v, tiles.get(v.w.instrument), true);
  }

  // A parameter's live series, shared by its plots and kept while the dashboard is open (an
  // edit redraws the widgets, not the data): seeded with the last SEED_S s from the store.
  function series(iid, name, period) {
    const key = `${iid}/${name}`;
    if (!lives.has(key)) lives.set(key, (async () => {
      const L = { x: [], ys: [[]], period };
      const now = Date.now() * 1e6;
      const res = await call("GET", `/api/instruments/${encodeURIComponent(iid)}` +
        `/telemetry?channels=${encodeURIComponent(name)}&start=${now - SEED_S * NS}`);
      if (res.ok) {
        const c = res.doc.columns;
        const xs = c.time.map((ns) => ns / NS);
        const ys = c[name].map((val) => show.scalar(val)[0]);
        [L.x, L.ys] = show.withGaps(xs, [ys], show.gapPeriods * Math.max(period, 0.5));
      }
      return L;
    })());
    return lives.get(key);
  }

  // A widget in the archive window: a plot of the window's history, or the last value in it.
  async function fillArchive(v) {
    const my = seq;
    const d = await info(v.w.instrument);
    if (my !== seq || !views.includes(v)) return;
    if (!d) { statusOnly(v); return; }
    const name = v.w.channel;
    const chan = (d.channels || []).find((c) => c.name === name) || null;
    const got = await windowed(v.w.instrument, name, Number(d.expected_period_s) || 1);
    if (my !== seq || !views.includes(v)) return;
    if (v.w.kind === "value") { paintArchiveValue(v, got, chan); return; }
    const box = `#dw-plot-${v.i}`;
    if (got.error) { $(box).textContent = `history unavailable: ${got.error}`; return; }
    v.plot = show.makePlot(box, chan, [name], [got.x, got.y]);
    $(box).dataset.points = String(got.n);
    fit(v);
  }

  function paintArchiveValue(v, got, chan) {
    const out = v.box.querySelector(".dw-value");
    const at = v.box.querySelector(".dw-at");
    const units = chan && chan.units ? chan.units : "";
    delete v.box.dataset.value;
    if (got.error) { out.textContent = "—"; at.textContent = `unavailable: ${got.error}`; return; }
    if (!got.last) {
      out.textContent = "none";
      at.textContent = "no value in the window";
      v.box.dataset.state = "";
      return;
    }
    out.textContent = show.withUnits(got.last.value, units);
    out.title = JSON.stringify(got.last.value);
    const iso = new Date(got.last.time / 1e6).toISOString();
    at.textContent = `last in the window · ${iso.slice(0, 10)} ${iso.slice(11, 19)}Z`;
    v.box.dataset.value = out.textContent;
    v.box.dataset.at = iso;
    v.box.dataset.state = got.last.state === null || got.last.state === undefined ? ""
      : String(got.last.state);
  }

  // A parameter over the time bar's archive window [start, stop), shared by its widgets and
  // read as the instrument page's history plot reads it: min/max/mean buckets, or the samples
  // themselves when the window holds few; gaps as gaps, the axis the whole window. And the
  // window's last sample (from the samples of its last bucket that has any), null if none.
  function windowed(iid, name, period) {
    const key = `${iid}/${name}`;
    if (!windows.has(key)) windows.set(key, (async () => {
      const { start, stop } = window.ilrsTime.window();
      const base = `/api/instruments/${encodeURIComponent(iid)}/telemetry?channels=` +
        `${encodeURIComponent(name)}&stop=${stop}`;
      const b = await call("GET", `${base}&start=${start}&max_points=${BUCKETS}`);
      if (!b.ok) return { error: why(b) };
      const c = b.doc.columns;
      const counts = c[`${name}__count`] || [];
      const total = counts.reduce((a, n) => a + (n || 0), 0);
      let lastBucket = -1;
      counts.forEach((n, i) => { if (n) lastBucket = i; });
      let raw = null;
      if (total > 0) {
        // a bucket's start in ns, as a JS number, is a few hundred ns off: ask from a bit before
        const from = total <= RAW_MAX ? start : Math.floor(c.time[lastBucket] - 1e6);
        const r = await call("GET", `${base}&start=${from}`);
        if (!r.ok) return { error: why(r) };
        raw = r.doc.columns;
      }
      const width = (stop - start) / BUCKETS / NS; // s
      const xs = [], ys = [];
      let maxStep = show.gapPeriods * period;
      if (raw && total <= RAW_MAX) {
        for (let i = 0; i < raw.time.length; i++) {
          xs.push(raw.time[i] / NS);
          ys.push(show.scalar(raw[name][i])[0]);
        }
      } else {
        for (let i = 0; i < c.time.length; i++) {
          if (!counts[i]) continue;
          xs.push(c.time[i] / NS + width / 2); // a bucket's values belong to its middle
          ys.push(c[`${name}__mean`][i]);
        }
        maxStep = Math.max(maxStep, 2 * width);
      }
      const [x, [y]] = show.withGaps(xs, [ys], maxStep);
      x.unshift(start / NS); x.push(stop / NS); // the axis is the window, whatever the data
      y.unshift(null); y.push(null);
      const n = raw ? raw.time.length : 0;
      const states = raw && raw[`${name}__state`];
      const last = n ? { value: raw[name][n - 1], time: raw.time[n - 1],
        state: states ? states[n - 1] : null } : null;
      return { x, y, n: xs.length, last };
    })());
    return windows.get(key);
  }

  function statusOnly(v) {
    v.box.dataset.statusOnly = "true";
    const p = v.box.querySelector(".dw-plot");
    if (p) p.replaceWith(el("span", { class: "dw-value", text: "status only" }));
    else if (v.w.kind === "value") v.box.querySelector(".dw-value").textContent = "status only";
    const at = v.box.querySelector(".dw-at");
    if (at) at.textContent = "";
  }

  // A plot fills its widget: the grid cells it spans (dashboards.css: ROW_PX rows, GAP_PX
  // apart) less its head and the legend under it. From the layout, not measured: a widget
  // just drawn may not have its final size yet.
  const ROW_PX = 84, GAP_PX = 10, HEAD_PX = 31, LEGEND_PX = 26, PAD_PX = 12;
  function fit(v) {
    if (!v.plot) return;
    const box = v.box.querySelector(".dw-plot");
    const head = v.box.querySelector(".dw-head").offsetHeight || HEAD_PX; // taller in edit mode
    const h = v.w.h * ROW_PX + (v.w.h - 1) * GAP_PX - head - LEGEND_PX - PAD_PX;
    v.plot.setSize({ width: Math.max(160, box.clientWidth - 2), height: Math.max(60, h) });
  }

  function paint(v, t, fresh) {
    const health = v.box.querySelector(".dw-health");
    v.box.dataset.health = t.health;
    const past = v.box.dataset.mode === "archive"; // the health is now's, the values the window's
    if (health) health.textContent = past ? `now ${t.health}` : t.health;
    if (past) {
      if (!t.values) statusOnly(v);
      return;
    }
    const val = t.values ? t.values[v.w.channel] : null;
    if (v.w.kind === "value") {
      const out = v.box.querySelector(".dw-value");
      if (!t.values) { out.textContent = "status only"; v.box.dataset.statusOnly = "true"; return; }
      out.textContent = val ? show.withUnits(val.value, val.units) : "—";
      out.title = val ? JSON.stringify(val.value) : "";
      v.box.dataset.state = val && val.state !== null && val.state !== undefined ? String(val.state) : "";
      if (val) v.box.dataset.value = out.textContent;
      return;
    }
    if (v.w.kind !== "plot" || !fresh || !v.plot || !val || !t.last_packet_time_ns) return;
    const L = v.live;
    const x = t.last_packet_time_ns / NS;
    const pushed = pushPoint(L, x, [show.scalar(val.value)[0]],
      show.gapPeriods * Math.max(L.period, 0.5), LIVE_KEEP);
    if (!pushed && L.x[L.x.length - 1] !== x) return; // (another plot of it took the point)
    show.setPlotData(v.plot, `#dw-plot-${v.i}`, [L.x, ...L.ys]);
  }

  function unitsOf(a) {
    const t = tiles.get(a.instrument);
    const v = t && t.values ? t.values[a.channel] : null;
    return v ? v.units : "";
  }

  function paintAlarms(v) {
    const list = [...alarms.values()]
      .filter((a) => !v.w.instrument || a.instrument === v.w.instrument)
      .sort((a, b) => (SEV[a.severity] ?? 9) - (SEV[b.severity] ?? 9) ||
        (b.changed_ns || 0) - (a.changed_ns || 0));
    const ul = v.box.querySelector(".dw-alarms");
    ul.replaceChildren(...list.map((a) => el("li", { "data-severity": a.severity || "",
      "data-state": a.state || "" },
    el("span", { class: "sev", text: `${a.severity || "?"} · ${a.state}` }),
    el("a", { href: `#/i/${encodeURIComponent(a.instrument)}/${encodeURIComponent(a.channel)}`,
      text: `${a.instrument} / ${a.channel}` }),
    el("span", { class: "num", text: show.withUnits(a.trip_value ?? a.value, unitsOf(a)) }))));
    if (!list.length) ul.append(el("li", { class: "meta", text: "no alarms" }));
  }

  // ------------------------------------------------------------------ editing

  function startEdit() {
    draft = board.widgets.map((w) => ({ ...w }));
    $("#db-rename").value = board.name;
    $("#db-visibility").value = board.visibility;
  }
  $("#db-edit").addEventListener("click", () => { startEdit(); render(); $("#db-param").focus(); });
  $("#db-cancel").addEventListener("click", () => { draft = null; render(); $("#db-edit").focus(); });

  $("#db-save").addEventListener("click", async () => {
    const body = { name: $("#db-rename").value.trim() || board.name,
      visibility: $("#db-visibility").value, widgets: draft, version: board.version };
    const res = await call("PUT", `/api/dashboards/${encodeURIComponent(board.id)}`, body);
    if (!res.ok) {
      $("#db-view-msg").textContent = res.status === 409
        ? `Not saved: someone changed this dashboard meanwhile (${res.doc.detail})`
        : `Not saved: ${why(res)}`;
      return;
    }
    $("#db-view-msg").textContent = "";
    board = res.doc;
    draft = null;
    render();
    $("#db-edit").focus();
  });

  $("#db-delete").addEventListener("click", async () => {
    const b = $("#db-delete");
    if (!b.dataset.armed) { b.dataset.armed = "1"; b.textContent = "Really delete?"; return; }
    const res = await call("DELETE", `/api/dashboards/${encodeURIComponent(board.id)}?version=${board.version}`);
    if (!res.ok) { $("#db-view-msg").textContent = `Not deleted: ${why(res)}`; return; }
    location.hash = "#/dashboards";
  });

  // The first free spot of a w x h widget, row by row.
  function freeSpot(w, h) {
    for (let y = 0; y < 100; y++) {
      for (let x = 0; x + w <= COLS; x++) {
        if (!overlaps({ x, y, w, h }, draft)) return [x, y];
      }
    }
    return [0, 0];
  }

  $("#db-editor").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const kind = $("#db-kind").value;
    const text = $("#db-param").value.trim();
    const i = text.indexOf("/");
    const inst = i > 0 ? text.slice(0, i) : text;
    const chan = i > 0 ? text.slice(i + 1) : "";
    const msg = $("#db-view-msg");
    if (kind !== "alarms" && (!inst || !chan)) {
      msg.textContent = "Pick a parameter: instrument/channel (type words to search).";
      $("#db-param").focus();
      return;
    }
    if (inst) {
      const d = await info(inst);
      if (!d) { msg.textContent = `Unknown instrument ${inst}, or not one you may read.`; return; }
      if (chan && !(d.channels || []).some((c) => c.name === chan)) {
        msg.textContent = `${inst} has no channel ${chan}; its channels: ` +
          `${d.channels.map((c) => c.name).join(", ")}`;
        return;
      }
    }
    msg.textContent = "";
    const [w, h] = SIZES[kind];
    const [x, y] = freeSpot(w, h);
    const widget = { kind, x, y, w, h };
    if (inst) widget.instrument = inst;
    if (chan && kind !== "alarms") widget.channel = chan;
    draft.push(widget);
    $("#db-param").value = "";
    render();
    $("#db-param").focus();
  });

  $("#db-param").addEventListener("input", async () => {
    const q = $("#db-param").value.trim();
    if (q.length < 2 || q.includes("/")) return;
    const res = await call("GET", `/api/search?${new URLSearchParams({ q, limit: "20" })}`);
    if (!res.ok || $("#db-param").value.trim() !== q) return;
    $("#db-options").replaceChildren(...res.doc.results.map((r) => el("option",
      { value: `${r.instrument}/${r.channel}`,
        label: [r.description, r.units].filter(Boolean).join(" · ") || r.channel })));
  });

  $("#db-grid").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-act]");
    if (!b || !draft) return;
    const i = Number(b.closest(".dw").dataset.index);
    const w = draft[i];
    const act = b.dataset.act;
    if (act === "remove") draft.splice(i, 1);
    else if (act === "left") w.x = Math.max(0, w.x - 1);
    else if (act === "right") w.x = Math.min(COLS - w.w, w.x + 1);
    else if (act === "up") w.y = Math.max(0, w.y - 1);
    else if (act === "down") w.y = Math.min(99, w.y + 1);
    else if (act === "narrower") w.w = Math.max(1, w.w - 1);
    else if (act === "wider") w.w = Math.min(COLS - w.x, w.w + 1);
    else if (act === "shorter") w.h = Math.max(1, w.h - 1);
    else if (act === "taller") w.h = Math.min(12, w.h + 1);
    render();
    // the keyboard stays where it was: on the same tool of the same widget
    const again = act === "remove" ? $("#db-param")
      : $(`#db-grid .dw[data-index="${i}"] button[data-act="${act}"]`);
    if (again) again.focus();
  });
})();
