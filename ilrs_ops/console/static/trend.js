/* ILRS operations console: Trending (#/trend). Several parameters of any instruments on one
 * UTC time axis, one y-axis per unit. The trend is the URL hash, so it can be shared:
 * #/trend?p=cnsa-eps/bus_v,sup-rover-1/batt_v, then the time conductor's window (timebar.js):
 * &range=3600 (realtime: the last hour, followed) or &start=ISO&stop=ISO (archive, e.g. after
 * a drag zoom). Data: GET
 * /api/instruments/{id}/telemetry, one request per instrument: min/max/mean buckets of the
 * rollups when the window holds many samples, the samples themselves when few. A bucket with
 * no samples, or samples further apart than 3 periods, is drawn as a gap. The API scopes it:
 * a parameter the token may not read is named with the console's answer and not plotted. */
"use strict";
(() => {
  const { $, el } = window.ilrsDom; // dom.js
  const { isoUtc: utc, timeTicks } = window.ilrsDom;
  const NS = 1e9;
  const GAP_PERIODS = 3;
  const COLORS = ["#6cb6ff", "#ffb454", "#7fd699", "#f07178", "#c792ea", "#4dd0e1",
    "#ffd54f", "#a1887f"];
  let token = null;
  let shown = false;
  let state = null; // {params: [{inst, chan}]} from the hash
  let loaded = ""; // the hash the plot shows
  let plot = null;
  let seq = 0;
  let timer = null;
  let periods = new Map(); // instrument -> expected_period_s (from /api/status)

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

  // ------------------------------------------------------------------ the section

  const section = el("section", { id: "trend", class: "trend", hidden: "",
    "aria-labelledby": "trend-title" },
  el("div", { class: "row" },
    el("h2", { id: "trend-title", tabindex: "-1", text: "Trending" }),
    el("span", { id: "tr-window", class: "meta", role: "status" }),
    el("button", { type: "button", id: "tr-export", text: "Export CSV",
      title: "the plotted series, as shown (buckets or samples), as CSV" })),
  el("form", { id: "tr-add-form", class: "row", autocomplete: "off" },
    el("label", { for: "tr-add" }, "Add parameter"),
    el("input", { id: "tr-add", size: "34", list: "tr-options", spellcheck: "false",
      placeholder: "instrument/channel, or search words" }),
    el("datalist", { id: "tr-options" }),
    el("button", { type: "submit", id: "tr-add-ok", text: "Add" }),
    el("span", { class: "help", text: "the time bar's window, in UTC; drag to zoom in (an " +
      "archive window), double-click for realtime" })),
  el("p", { id: "tr-msg", class: "error", role: "alert" }),
  el("div", { id: "tr-plot", class: "plot tr-plot", "aria-label": "Trend plot" }),
  el("p", { id: "tr-info", class: "meta", role: "status" }),
  el("table", { id: "tr-table", class: "tr-table" },
    el("thead", {}, el("tr", {}, ...["", "Parameter", "Units", "Shown as", "At cursor", ""]
      .map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", { id: "tr-list" })),
  el("p", { id: "tr-empty", class: "meta", text: "No parameters: add one above, or from the " +
    "header's search (its + trend)." }));
  $("#main").append(section);

  // ------------------------------------------------------------------ the hash

  const key = (p) => `${p.inst}/${p.chan}`;
  function parse(hash) {
    const q = new URLSearchParams(hash.replace(/^#\/trend\??/, ""));
    const params = [];
    for (const s of (q.get("p") || "").split(",")) {
      const i = s.indexOf("/");
      if (i > 0 && i < s.length - 1 && !params.some((p) => key(p) === s)) {
        params.push({ inst: s.slice(0, i), chan: s.slice(i + 1) });
      }
    }
    return { params };
  }
  function hashOf(s) {
    const time = window.ilrsTime.query(); // timebar.js
    return `#/trend?p=${s.params.map(key).join(",")}${time ? `&${time}` : ""}`;
  }
  const go = (s) => { location.hash = hashOf(s); };

  // the header search's "+ trend" (events.js) adds here, from any view
  window.ilrsTrend = {
    rawMax: 4000, // samples of one instrument in the window: up to this many, raw points
    add(inst, chan) {
      const s = location.hash.startsWith("#/trend") ? parse(location.hash) : parse("");
      if (!s.params.some((p) => p.inst === inst && p.chan === chan)) s.params.push({ inst, chan });
      go(s);
    },
  };

  // ------------------------------------------------------------------ session and route

  window.addEventListener("ilrs:session", (ev) => {
    token = ev.detail.token;
    periods = new Map();
    if (!token) { section.hidden = true; shown = false; stopLive(); }
  });
  window.addEventListener("ilrs:route", (ev) => {
    const want = ev.detail.view === "trend";
    const nav = $("#nav-trend");
    if (want) nav.setAttribute("aria-current", "page"); else nav.removeAttribute("aria-current");
    section.hidden = !want;
    if (!want) { shown = false; stopLive(); return; }
    const first = !shown;
    shown = true;
    if (first) $("#trend-title").focus();
    if (location.hash !== loaded || first) apply();
  });

  function stopLive() { clearInterval(timer); timer = null; }

  function apply() {
    state = parse(location.hash);
    loaded = location.hash;
    stopLive();
    load();
    const w = window.ilrsTime.window();
    if (w.live) {
      // follow: a refresh about every 1/300 of the window (2 s for 15 min, ~5 min for a day)
      timer = setInterval(() => { if (shown && !document.hidden && !dragging) load(); },
        Math.max(2000, w.span * 1000 / 300));
    }
  }

  // ------------------------------------------------------------------ data

  async function expected(inst) {
    if (!periods.size) {
      try {
        const st = await get("/api/status");
        for (const p of st.partners || []) {
          for (const t of p.instruments || []) periods.set(t.instrument, Number(t.expected_period_s));
        }
      } catch (e) { /* then from the samples' spacing */ }
    }
    return periods.get(inst) || null;
  }

  function scalar(v) {
    if (Array.isArray(v)) {
      const xs = v.filter((x) => typeof x === "number");
      if (!xs.length) return [null, null, null];
      return [xs.reduce((a, b) => a + b, 0) / xs.length, Math.min(...xs), Math.max(...xs)];
    }
    return typeof v === "number" ? [v, v, v] : [null, null, null];
  }

  // One instrument's channels over [start, stop): {mode, x (s), per channel [mean, min, max],
  // units, source, width} or throws the console's answer.
  async function fetchInstrument(inst, chans, start, stop, buckets) {
    const base = `/api/instruments/${encodeURIComponent(inst)}/telemetry?` +
      `${new URLSearchParams({ channels: chans.join(","), start: String(start), stop: String(stop) })}`;
    const b = await get(`${base}&max_points=${buckets}`);
    const counts = chans.map((c) => (b.columns[`${c}__count`] || []).reduce((a, n) => a + (n || 0), 0));
    const total = Math.max(0, ...counts);
    const width = (stop - start) / buckets / NS;
    if (total > 0 && total <= window.ilrsTrend.rawMax) {
      const r = await get(base);
      const period = (await expected(inst)) || 1;
      const x = [], ys = chans.map(() => [[], [], []]);
      const t = r.columns.time;
      for (let i = 0; i < t.length; i++) {
        const xi = t[i] / NS;
        if (i && xi - x[x.length - 1] > GAP_PERIODS * period) { // nothing arrived: a gap
          x.push((xi + x[x.length - 1]) / 2);
          for (const y of ys) for (const k of y) k.push(null);
        }
        x.push(xi);
        chans.forEach((c, j) => { scalar(r.columns[c][i]).forEach((v, k) => ys[j][k].push(v)); });
      }
      return { mode: "raw", x, ys, units: r.units, source: r.source, n: t.length };
    }
    const x = [], ys = chans.map(() => [[], [], []]);
    const t = b.columns.time;
    for (let i = 0; i < t.length; i++) {
      x.push(t[i] / NS + width / 2); // a bucket's values belong to its middle
      chans.forEach((c, j) => {
        const empty = !b.columns[`${c}__count`][i]; // no samples in the bucket: a gap
        ys[j][0].push(empty ? null : b.columns[`${c}__mean`][i]);
        ys[j][1].push(empty ? null : b.columns[`${c}__min`][i]);
        ys[j][2].push(empty ? null : b.columns[`${c}__max`][i]);
      });
    }
    return { mode: "buckets", x, ys, units: b.units, source: b.source, n: t.length, width };
  }

  async function load() {
    const s = state;
    const my = ++seq;
    const box = $("#tr-plot");
    const w = window.ilrsTime.window();
    const { start, stop } = w;
    $("#tr-window").textContent = `${utc(start / NS)} – ${utc(stop / NS)}` +
      (w.live ? " · following" : "");
    box.dataset.state = "loading";
    const buckets = Math.max(100, Math.min(2000, Math.round(box.clientWidth || 1000)));
    const groups = new Map();
    for (const p of s.params) {
      if (!groups.has(p.inst)) groups.set(p.inst, []);
      groups.get(p.inst).push(p.chan);
    }
    const answers = await Promise.all([...groups].map(async ([inst, chans]) => {
      try { return { inst, chans, got: await fetchInstrument(inst, chans, start, stop, buckets) }; }
      catch (e) { return { inst, chans, error: e.message }; }
    }));
    if (my !== seq || !shown || !token) return;
    draw(s, start, stop, answers, buckets);
  }

  // ------------------------------------------------------------------ the plot

  const fmt = (v) => (v === null || v === undefined ? "—"
    : Math.abs(v) >= 1000 || v === Math.round(v) ? String(+v.toFixed(3)) : v.toPrecision(5));

  let shownSeries = []; // [{param, units, color, mode, idx: [mean, min, max], how}]
  let plotSig = ""; // what the plot was built for
  let xRange = [0, 1]; // s: the window shown
  let dragging = false; // a zoom being dragged: no live refresh under it

  function draw(s, start, stop, answers, buckets) {
    const box = $("#tr-plot");
    const errors = [];
    const tables = [];
    shownSeries = [];
    let idx = 1;
    for (const p of s.params) {
      const a = answers.find((x) => x.inst === p.inst);
      if (!a || a.error) { errors.push(`${key(p)}: ${a ? a.error : "not loaded"}`); continue; }
      const j = a.chans.indexOf(p.chan);
      const g = a.got;
      tables.push([g.x, ...g.ys[j]]);
      const how = g.mode === "raw" ? `${g.n} samples` : `${g.n} buckets of ${g.width.toFixed(g.width < 10 ? 2 : 0)} s (min/max band)`;
      shownSeries.push({ param: key(p), inst: p.inst, chan: p.chan,
        units: (g.units && g.units[p.chan]) || "", mode: g.mode, how, source: g.source,
        color: COLORS[shownSeries.length % COLORS.length], idx: [idx, idx + 1, idx + 2] });
      idx += 3;
    }
    $("#tr-msg").textContent = errors.length ? `Not plotted: ${errors.join("; ")}` : "";
    // the window's ends, without values: the axis spans [start, stop) whatever the data covers
    tables.push([[start / NS, stop / NS], [null, null]]);
    // NULL_EXPAND (2): a gap spreads over the other instruments' times inside it; uPlot draws a line
    // across an undefined (no sample of this series at that x), and would across the gap too
    const joined = uPlot.join(tables, tables.map((t) => t.map(() => 2))); // ([0]: x, unused)
    const data = joined.slice(0, -1); // (the ends' own empty series)
    const unitsOrder = [];
    for (const ser of shownSeries) if (!unitsOrder.includes(ser.units)) unitsOrder.push(ser.units);
    const axis = { stroke: "#9aa4b2", grid: { stroke: "#2e3744" }, ticks: { stroke: "#2e3744" } };
    const series = [{ label: "UTC", value: (u, v) => (v === null || v === undefined ? "—" : utc(v, true)) }];
    const bands = [];
    for (const ser of shownSeries) {
      const scale = `u:${ser.units}`;
      series.push({ label: ser.param, scale, stroke: ser.color, width: 2, spanGaps: false });
      series.push({ label: `${ser.param} min`, scale, stroke: `${ser.color}66`, width: 1,
        spanGaps: false, points: { show: false } });
      series.push({ label: `${ser.param} max`, scale, stroke: `${ser.color}66`, width: 1,
        spanGaps: false, points: { show: false } });
      if (ser.mode === "buckets") bands.push({ series: [ser.idx[2], ser.idx[1]], fill: `${ser.color}26` });
    }
    xRange = [start / NS, stop / NS];
    // the same parameters, units and kinds as drawn (a live refresh): new data into the same
    // plot, so the cursor, its readout and a drag being made stay
    const sig = JSON.stringify([shownSeries.map((x) => [x.param, x.units, x.mode]), unitsOrder]);
    if (plot && sig === plotSig) {
      plot.setData(data);
      finish(box, start, stop, buckets, unitsOrder, s);
      return;
    }
    plotSig = sig;
    const scales = { x: { time: true, range: () => xRange } };
    const axes = [{ ...axis, values: timeTicks, space: 80, size: 56 }];
    unitsOrder.forEach((units, i) => {
      scales[`u:${units}`] = { auto: true };
      const first = shownSeries.find((x) => x.units === units);
      axes.push({ ...axis, scale: `u:${units}`, side: i % 2 ? 1 : 3, size: 64,
        label: units || "(no units)", labelSize: 18, stroke: first.color,
        grid: { ...axis.grid, show: i === 0 } });
    });
    if (!unitsOrder.length) { scales["u:"] = { auto: true }; axes.push({ ...axis, scale: "u:" }); }
    if (plot) { plot.destroy(); plot = null; }
    box.replaceChildren();
    const opts = {
      width: Math.max(400, box.clientWidth - 2), height: 420,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"), // station time is UTC
      scales, series, axes, bands,
      padding: [null, unitsOrder.length > 1 ? null : 56, null, null], // (the last time label)
      cursor: { drag: { x: true, y: false, setScale: false } },
      legend: { show: false },
      hooks: { setSelect: [zoomed], setCursor: [readout] },
    };
    plot = new uPlot(opts, data, box);
    box._plot = plot; // for the browser tests: the plot's data and scales
    finish(box, start, stop, buckets, unitsOrder, s);
  }

  function finish(box, start, stop, buckets, unitsOrder, s) {
    box._trend = { start_ns: start, stop_ns: stop, buckets, series: shownSeries.map((x) => ({ ...x })),
      axes: unitsOrder.slice() };
    box.dataset.state = "ready";
    box.dataset.loads = String(Number(box.dataset.loads || 0) + 1);
    // when the frame with the plot is painted, in ms since the navigation (bench_trend.py)
    requestAnimationFrame(() => { box.dataset.drawnMs = String(performance.now()); });
    $("#tr-info").textContent = shownSeries.length
      ? `${shownSeries.length} parameter${shownSeries.length > 1 ? "s" : ""} on ` +
        `${unitsOrder.length} axis${unitsOrder.length > 1 ? "es" : ""}; a gap in a line is time ` +
        "without data"
      : "";
    list(s);
  }

  function list(s) {
    const rows = s.params.map((p) => {
      const ser = shownSeries.find((x) => x.param === key(p));
      const rm = el("button", { type: "button", class: "tr-rm", "data-param": key(p),
        "aria-label": `Remove ${key(p)}`, text: "Remove" });
      return el("tr", { "data-param": key(p) },
        el("td", {}, el("span", { class: "tr-swatch", style: `background:${ser ? ser.color : "transparent"}` })),
        el("td", { text: key(p) }),
        el("td", { text: ser ? ser.units || "—" : "—" }),
        el("td", { text: ser ? ser.how : "not plotted" }),
        el("td", { class: "tr-at", text: "—" }),
        el("td", {}, rm));
    });
    $("#tr-list").replaceChildren(...rows);
    $("#tr-empty").hidden = rows.length > 0;
  }

  function readout(u) {
    const i = u.cursor.idx;
    for (const ser of shownSeries) {
      const td = section.querySelector(`#tr-list tr[data-param="${CSS.escape(ser.param)}"] .tr-at`);
      if (!td) continue;
      if (i === null || i === undefined) { td.textContent = "—"; continue; }
      const [m, lo, hi] = ser.idx.map((k) => u.data[k][i]);
      td.textContent = m === null || m === undefined ? "—" : ser.mode === "buckets"
        ? `${fmt(m)} (${fmt(lo)} … ${fmt(hi)}) at ${utc(u.data[0][i])}` : `${fmt(m)} at ${utc(u.data[0][i], true)}`;
    }
  }

  function zoomed(u) {
    if (u.select.width < 5) return;
    const a = u.posToVal(u.select.left, "x"), b = u.posToVal(u.select.left + u.select.width, "x");
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    window.ilrsTime.archive(Math.round(a * 1e3) * 1e6, Math.round(b * 1e3) * 1e6);
  }

  // ------------------------------------------------------------------ controls

  $("#tr-plot").addEventListener("mousedown", () => { dragging = true; });
  window.addEventListener("mouseup", () => { dragging = false; });
  $("#tr-plot").addEventListener("dblclick", () => window.ilrsTime.realtime());
  $("#tr-list").addEventListener("click", (ev) => {
    const b = ev.target.closest("button.tr-rm");
    if (b) go({ ...state, params: state.params.filter((p) => key(p) !== b.dataset.param) });
  });

  let optSeq = 0;
  $("#tr-add").addEventListener("input", async (ev) => {
    const q = ev.target.value.trim();
    const my = ++optSeq;
    if (!q || q.includes("/")) return;
    let d;
    try { d = await get(`/api/search?${new URLSearchParams({ q, limit: "20" })}`); } catch (e) { return; }
    if (my !== optSeq) return;
    $("#tr-options").replaceChildren(...d.results.map((h) => el("option",
      { value: `${h.instrument}/${h.channel}`,
        label: `${h.units ? `[${h.units}] ` : ""}${h.description || h.instrument_name || ""}` })));
  });
  // Adding asks the console first (one sample's worth), so a parameter that does not exist or
  // is not this token's is refused here, by name, and never enters the trend.
  $("#tr-add-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = $("#tr-add").value.trim();
    const i = v.indexOf("/");
    if (i <= 0 || i === v.length - 1) {
      $("#tr-msg").textContent = `“${v}”: write instrument/channel, e.g. sup-rover-1/batt_v, ` +
        "or pick one of the suggestions";
      return;
    }
    const inst = v.slice(0, i), chan = v.slice(i + 1);
    const now = Date.now() * 1e6;
    try {
      await get(`/api/instruments/${encodeURIComponent(inst)}/telemetry?` +
        `${new URLSearchParams({ channels: chan, start: String(now - NS), stop: String(now), max_points: "1" })}`);
    } catch (e) {
      $("#tr-msg").textContent = `${v}: not added: ${e.message}`;
      return;
    }
    $("#tr-add").value = "";
    $("#tr-msg").textContent = "";
    if (!state.params.some((p) => key(p) === v)) go({ ...state, params: [...state.params, { inst, chan }] });
  });

  // ------------------------------------------------------------------ export

  // What is shown, as CSV: one row per plotted time, per parameter its value (samples) or its
  // bucket's mean, min and max; an empty cell where the parameter has no value (a gap).
  function csv() {
    if (!plot) return "";
    const d = plot.data;
    const head = ["time_utc"];
    for (const ser of shownSeries) {
      const u = ser.units ? ` [${ser.units}]` : "";
      if (ser.mode === "raw") head.push(`${ser.param}${u}`);
      else head.push(`${ser.param} mean${u}`, `${ser.param} min${u}`, `${ser.param} max${u}`);
    }
    const lines = [head.map((h) => `"${h.replace(/"/g, '""')}"`).join(",")];
    for (let i = 0; i < d[0].length; i++) {
      const cells = [];
      let any = false;
      for (const ser of shownSeries) {
        for (const k of ser.mode === "raw" ? [ser.idx[0]] : ser.idx) {
          const v = d[k][i];
          if (v !== null && v !== undefined) any = true;
          cells.push(v === null || v === undefined ? "" : String(v));
        }
      }
      if (any) lines.push([new Date(d[0][i] * 1e3).toISOString(), ...cells].join(","));
    }
    return `${lines.join("\n")}\n`;
  }
  $("#tr-export").addEventListener("click", () => {
    const { start_ns: a, stop_ns: b } = $("#tr-plot")._trend || {};
    const link = el("a", { href: URL.createObjectURL(new Blob([csv()], { type: "text/csv" })),
      download: `trend_${a}_${b}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  });

  window.addEventListener("resize", () => {
    if (plot && shown) plot.setSize({ width: Math.max(400, $("#tr-plot").clientWidth - 2), height: 420 });
  });
})();
