/* ILRS operations console: the links and ingest view (#/links). GET /api/links every 2 s
 * while shown: per instrument packets/s and bytes/s (the console's rates from the ingest
 * counters), last packet, gaps, rejects by reason; per ingest lane queue, lag, messages/s and
 * store errors; per shard (operators) connection and in-flight window. The API scopes it: a
 * partner sees its own instruments and lanes, a viewer nothing (status only). Rows are
 * updated in place, so focus and scroll stay where they were. */
"use strict";
(() => {
  const { $, el } = window.ilrsDom; // dom.js
  const POLL_MS = 2000;
  let token = null;
  let you = null;
  let shown = false;
  let timer = null;
  let seq = 0; // a newer answer wins over an older one still in flight

  // ------------------------------------------------------------------ the section

  const th = (text, title) => el("th", title ? { scope: "col", title } : { scope: "col" }, text);
  const table = (id, label, heads) => el("table", { id, "aria-labelledby": label },
    el("thead", {}, el("tr", {}, ...heads)), el("tbody", { id: `${id}-list` }));
  const section = el("section", { id: "links", class: "links", hidden: "",
    "aria-labelledby": "links-title" },
  el("div", { class: "row" },
    el("h2", { id: "links-title", tabindex: "-1", text: "Links and ingest" }),
    el("label", {}, "Rates over ", el("select", { id: "ln-window" },
      el("option", { value: "10", text: "last 10 s" }),
      el("option", { value: "60", text: "last 1 min" }),
      el("option", { value: "300", text: "last 5 min" }))),
    el("span", { id: "ln-summary", class: "meta", role: "status" })),
  el("p", { id: "ln-msg", class: "error", role: "alert" }),
  el("div", { id: "ln-shards", class: "ln-shards", hidden: "", "aria-label": "Ingest shards" }),
  el("h3", { id: "ln-inst-title", text: "Instruments" }),
  table("ln-inst", "ln-inst-title", [
    th("Partner"), th("Instrument"), th("APID"),
    th("Packets/s", "good packets per second over the chosen window, from the ingest counter"),
    th("Bytes/s"), th("Packets", "good packets since the ingestor started"),
    th("Last packet (UTC)", "receive time of the last good packet"),
    th("Age", "stale after 3 missed periods, offline after 30"),
    th("Gaps", "sequence gaps (packets missing)"), th("Rejects", "quarantined, by reason")]),
  el("h3", { id: "ln-lanes-title", text: "Ingest lanes" }),
  table("ln-lanes", "ln-lanes-title", [
    th("Shard"), th("Lane"), th("State"), th("Queue", "messages waiting in the lane"),
    th("Messages/s", "made durable, over the window"),
    th("Lag", "receive to durable, last batch"),
    th("Behind", "wall clock minus the newest packet's time, last batch"),
    th("Commit", "WAL append + fsync, last batch"), th("Store errors"),
    th("Metrics age", "age of the shard's last metrics document")]),
  el("p", { id: "ln-lanes-empty", class: "meta", hidden: "", text: "No lanes reported." }),
  el("p", { class: "help", text: "Rates are the ingest counters' increase over the window, " +
    "as Prometheus computes them (GET /metrics has the counters). An instrument silent for " +
    "3 expected periods is stale, for 30 offline; a lane whose shard has sent no metrics " +
    "for 3 intervals is stale. Times in UTC." }));
  $("#main").append(section);

  // ------------------------------------------------------------------ formats

  const dash = "—";
  const hexApid = (a) => (typeof a === "number" ? `0x${a.toString(16).padStart(3, "0")}` : dash);
  const utc = (s) => {
    if (s === null || s === undefined) return dash;
    const iso = new Date(s * 1000).toISOString();
    return `${iso.slice(0, 10)} ${iso.slice(11, 19)}Z`;
  };
  function rate(x) {
    if (x === null || x === undefined) return dash;
    return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
  }
  function bytesRate(x) {
    if (x === null || x === undefined) return dash;
    if (x >= 1e6) return `${(x / 1e6).toFixed(2)} MB/s`;
    if (x >= 1e3) return `${(x / 1e3).toFixed(1)} kB/s`;
    return `${x.toFixed(0)} B/s`;
  }
  function age(s) {
    if (s === null || s === undefined) return "never";
    if (s < 10) return `${s.toFixed(1)} s`;
    if (s < 90) return `${s.toFixed(0)} s`;
    if (s < 5400) return `${(s / 60).toFixed(0)} min`;
    return `${(s / 3600).toFixed(1)} h`;
  }
  function secs(s) {
    if (s === null || s === undefined) return dash;
    return s < 1 ? `${(s * 1000).toFixed(s < 0.01 ? 1 : 0)} ms` : `${s.toFixed(2)} s`;
  }
  const count = (n) => (n === null || n === undefined ? dash : String(n));
  const reasons = (r) => Object.entries(r).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`)
    .join(" · ") || "0";

  // ------------------------------------------------------------------ rows, in place

  // Each cell is [text, class?, title?]; a row keeps its <tr> and its cells' nodes, so a
  // focused link in it stays focused and the scroll stays where it is.
  function sync(body, items, key, cells, attrs) {
    const old = new Map([...body.children].map((tr) => [tr.dataset.key, tr]));
    const trs = items.map((it) => {
      const k = key(it);
      let tr = old.get(k);
      const want = cells(it);
      if (!tr || tr.children.length !== want.length) {
        tr = el("tr", { "data-key": k }, ...want.map((c) => el("td", {}, c.node || "")));
      }
      want.forEach((c, i) => {
        const td = tr.children[i];
        if (!c.node && td.textContent !== c.text) td.textContent = c.text;
        const cls = c.cls || "";
        if (td.className !== cls) td.className = cls;
        if (c.title) td.title = c.title; else td.removeAttribute("title");
      });
      for (const [a, v] of Object.entries(attrs(it))) {
        if (v === null || v === undefined) tr.removeAttribute(`data-${a}`);
        else if (tr.getAttribute(`data-${a}`) !== String(v)) tr.setAttribute(`data-${a}`, String(v));
      }
      return tr;
    });
    const same = trs.length === body.children.length && trs.every((tr, i) => body.children[i] === tr);
    if (!same) body.replaceChildren(...trs); // (only when rows come or go: that moves nodes)
  }

  function instLink(id, tr) {
    const a = tr && tr.querySelector("a");
    return a && a.textContent === id ? a : el("a", { href: `#/i/${encodeURIComponent(id)}`, text: id });
  }

  function paintInstruments(rows) {
    const body = $("#ln-inst-list");
    const byKey = new Map([...body.children].map((tr) => [tr.dataset.key, tr]));
    sync(body, rows, (r) => r.instrument, (r) => {
      const silent = r.silent ? `${r.silent.toUpperCase()} · ` : "";
      const gaps = r.gaps ? `${r.gaps} (${r.missing} missing)` : "0";
      return [
        { text: r.partner },
        { node: instLink(r.instrument, byKey.get(r.instrument)) },
        { text: hexApid(r.apid), cls: "num" },
        { text: rate(r.packets_per_s), cls: "num rate" },
        { text: bytesRate(r.bytes_per_s), cls: "num" },
        { text: count(r.packets), cls: "num" },
        { text: utc(r.last_recv), cls: "num" },
        { text: `${silent}${age(r.last_packet_age_s)}`, cls: r.silent ? "num silent" : "num",
          title: r.silent ? `no packet for ${age(r.last_packet_age_s)}; expected every ` +
            `${r.expected_period_s} s` : null },
        { text: gaps, cls: r.gaps ? "num warn" : "num" },
        { text: reasons(r.rejects), cls: r.rejects_total ? "why warn" : "" },
      ];
    }, (r) => ({ silent: r.silent, health: r.health, packets: r.packets,
      "packets-per-s": r.packets_per_s, partner: r.partner }));
  }

  function paintLanes(lanes) {
    sync($("#ln-lanes-list"), lanes, (l) => `${l.shard}/${l.lane}`, (l) => {
      const last = (s) => (l.batches ? secs(s) : dash); // "last batch": none yet
      return [
        { text: l.shard, cls: "num" },
        { text: l.instrument ? l.lane : `${l.lane} (topics of no instrument)` },
        { text: l.state.replace("_", " "), cls: "lstate" },
        { text: count(l.queue), cls: l.queue ? "num warn" : "num" },
        { text: rate(l.messages_per_s), cls: "num" },
        { text: last(l.lag_s), cls: "num" },
        { text: last(l.behind_s), cls: "num" },
        { text: last(l.commit_s), cls: "num" },
        { text: count(l.store_errors), cls: l.store_errors ? "num bad" : "num" },
        { text: age(l.age_s), cls: "num" },
      ];
    }, (l) => ({ state: l.state, lane: l.lane, queue: l.queue }));
    $("#ln-lanes-empty").hidden = lanes.length > 0;
  }

  function paintShards(shards) {
    const box = $("#ln-shards");
    box.hidden = !shards;
    if (!shards) { box.replaceChildren(); return; }
    const chips = shards.map((s) => {
      const inflight = s.receive_maximum ? ` of ${s.receive_maximum}` : "";
      const rej = Object.values(s.rejects).reduce((a, b) => a + b, 0);
      const text = `shard ${s.of || s.shard} · ${s.state === "ok" ? "connected" : s.state} · ` +
        `${s.lanes} lanes · unacked ${count(s.unacked)}${inflight}` +
        `${s.read_paused ? " · reading paused" : ""} · rejects ${rej} · metrics ${age(s.age_s)} old`;
      return el("span", { class: "chip", "data-state": s.state, "data-shard": s.shard, text,
        title: rej ? `rejects: ${reasons(s.rejects)}` : "no rejects" });
    });
    if (!chips.length) chips.push(el("span", { class: "chip", "data-state": "stale", text: "no ingest shard has published metrics" }));
    box.replaceChildren(...chips);
  }

  function paint(d) {
    paintInstruments(d.instruments);
    paintLanes(d.lanes);
    paintShards(d.shards);
    const silent = d.instruments.filter((r) => r.silent).length;
    const bad = d.lanes.filter((l) => l.state !== "ok").length;
    const pps = d.instruments.reduce((a, r) => a + (r.packets_per_s || 0), 0);
    const at = new Date(d.updated * 1000).toISOString().slice(11, 19);
    const n = (k, what) => `${k} ${what}${k === 1 ? "" : "s"}`;
    $("#ln-summary").textContent = `${n(d.instruments.length, "instrument")} · ` +
      `${rate(pps)} packets/s · ${silent} silent · ${n(d.lanes.length, "lane")}, ${bad} not ok · ` +
      `${d.broker_connected ? "" : "console has no broker link · "}updated ${at}Z`;
    $("#ln-summary").dataset.silent = String(silent);
    $("#ln-summary").dataset.updated = String(d.updated); // (tests wait for a fresh answer)
  }

  // ------------------------------------------------------------------ polling

  async function load() {
    clearTimeout(timer);
    if (!shown || !token) return;
    const mine = ++seq;
    const q = new URLSearchParams({ window: $("#ln-window").value });
    try {
      const r = await fetch(`/api/links?${q}`, { headers: { Authorization: `Bearer ${token}` } });
      let doc = null;
      try { doc = await r.json(); } catch (e) { /* not JSON */ }
      if (mine !== seq || !shown) return;
      if (!r.ok) {
        const d = doc && doc.detail;
        $("#ln-msg").textContent = `The links view could not be read: ${r.status}` +
          `${typeof d === "string" ? `: ${d}` : ""}`;
      } else {
        $("#ln-msg").textContent = "";
        paint(doc);
      }
    } catch (e) {
      if (mine === seq) $("#ln-msg").textContent = `The console did not answer: ${e.message}`;
    }
    if (mine === seq && shown) timer = setTimeout(load, POLL_MS);
  }
  $("#ln-window").addEventListener("change", load);

  window.addEventListener("ilrs:session", (ev) => {
    token = ev.detail.token;
    you = ev.detail.you;
    $("#nav-links").hidden = !token || (you && you.role === "viewer"); // viewers: status only
    for (const id of ["#ln-inst-list", "#ln-lanes-list"]) $(id).replaceChildren();
    $("#ln-summary").textContent = "";
    if (!token) { section.hidden = true; shown = false; clearTimeout(timer); }
  });

  window.addEventListener("ilrs:route", (ev) => {
    const want = ev.detail.view === "links";
    const nav = $("#nav-links");
    if (want) nav.setAttribute("aria-current", "page"); else nav.removeAttribute("aria-current");
    section.hidden = !want;
    const was = shown;
    shown = want;
    if (want && !was) { load(); $("#links-title").focus(); }
    if (!want) clearTimeout(timer);
  });
})();
