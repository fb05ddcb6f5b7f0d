/* ILRS operations console: the packet inspector (#/packets, #/packets/{instrument}). Recent
 * raw and quarantined packets of one instrument from GET /api/instruments/{id}/packets (and,
 * for operators, the unknown-topic quarantine, GET /api/packets/unknown): a list, and for the
 * chosen packet its hex dump with offsets beside its header and fields as the profile decodes
 * them; hovering or focusing a field lights up its octets, hovering an octet its fields. In
 * realtime the list follows new packets: when the live status (`ilrs:status`) says the
 * instrument's counters moved, the list is asked again (at most every FOLLOW_MS), keeping the
 * packet shown, the focus and the rows in sight; Pause holds it. In the time bar's archive it
 * is the window's newest packets and stands still. The API scopes what a token sees (viewers:
 * none). */
"use strict";
(() => {
  const { $, el } = window.ilrsDom; // dom.js
  const UNKNOWN = "_unknown"; // the select's value for the unknown-topic quarantine
  const PER_LINE = 16;
  const FOLLOW_MS = 2000; // a live list is asked again at most this often
  let token = null;
  let you = null;
  let shown = false;
  let loadSeq = 0; // a newer load wins over an older one still in flight
  let unshown = false; // a choice was asked for (instrument, kind, limit) and is not shown yet
  let list = []; // packets as the API gave them, newest first
  let current = -1; // index in list of the packet shown
  let pinned = null; // the field row whose octets stay lit (clicked), or null
  let paused = false; // the operator holds the live list still
  let counted = new Map(); // instrument -> its counters (packets, rejects) last seen live
  let followAt = 0; // when the list was last asked for because packets came (ms)
  let followTimer = null;

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

  // UTC, ISO-like with seconds and ms, as the event log writes it
  const utc = (ns) => {
    if (ns === null || ns === undefined) return "—";
    const iso = new Date(ns / 1e6).toISOString();
    return `${iso.slice(0, 10)} ${iso.slice(11, 23)}Z`;
  };
  const hex = (v, digits) => `0x${v.toString(16).padStart(digits, "0")}`;

  // ------------------------------------------------------------------ session and route

  window.addEventListener("ilrs:session", (ev) => {
    token = ev.detail.token;
    you = ev.detail.you;
    list = [];
    current = -1;
    paused = false;
    counted = new Map();
    if (!token) { $("#packets").hidden = true; shown = false; return; }
    loadInstruments();
  });

  window.addEventListener("ilrs:route", (ev) => {
    const want = ev.detail.view === "packets";
    const nav = $("#nav-packets");
    if (want) nav.setAttribute("aria-current", "page"); else nav.removeAttribute("aria-current");
    $("#packets").hidden = !want;
    if (want) {
      const m = location.hash.split("?")[0].match(/^#\/packets\/(.+)$/);
      const asked = m ? decodeURIComponent(m[1]) : null;
      const sel = $("#pk-instrument");
      if (asked && [...sel.options].some((o) => o.value === asked)) sel.value = asked;
      else if (asked) wanted = asked; // the list of instruments is still loading
      if (!shown) $("#packets-title").focus();
      paintFollow();
      load();
    }
    shown = want;
  });

  // ------------------------------------------------------------------ following live

  const live = () => window.ilrsTime.state().live; // timebar.js
  const following = () => Boolean(token) && !$("#packets").hidden && !paused && live() &&
    !document.hidden;

  function paintFollow() {
    const on = live();
    $("#pk-pause").hidden = !on;
    $("#pk-pause").setAttribute("aria-pressed", String(paused));
    const f = $("#pk-follow");
    f.dataset.mode = !on ? "archive" : paused ? "paused" : "live";
    f.textContent = !on ? "archive: the window's newest, standing still"
      : paused ? "paused: new packets are not shown" : "following new packets";
  }

  // The live status carries each instrument's counters: when the chosen one's moved, it has
  // new packets (or rejects). The unknown-topic quarantine has no counters of its own: it is
  // asked again whenever any instrument's move, as often as FOLLOW_MS allows.
  window.addEventListener("ilrs:status", (ev) => {
    const t = ev.detail;
    const rejects = Object.values(t.rejects || {}).reduce((a, b) => a + b, 0);
    const now = `${t.packets ?? 0}/${rejects}`;
    const was = counted.get(t.instrument);
    counted.set(t.instrument, now);
    const id = $("#pk-instrument").value;
    if (was !== now && (id === t.instrument || id === UNKNOWN)) follow();
  });
  window.addEventListener("ilrs:time", paintFollow);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) follow(); });

  function follow() {
    if (followTimer || !following()) return;
    const wait = Math.max(0, followAt + FOLLOW_MS - Date.now());
    followTimer = setTimeout(() => {
      followTimer = null;
      if (!following()) return;
      followAt = Date.now();
      load(true);
    }, wait);
  }

  $("#pk-pause").addEventListener("click", () => {
    paused = !paused;
    paintFollow();
    if (!paused) load(true);
  });

  // The instrument page links here, to its own packets.
  window.addEventListener("ilrs:detail", (ev) => {
    let a = $("#detail-packets");
    if (!ev.detail.id) { if (a) a.hidden = true; return; }
    if (!a) {
      a = el("a", { id: "detail-packets", class: "pk-link", text: "Packets" });
      $("#detail-health").after(a);
    }
    a.href = `#/packets/${encodeURIComponent(ev.detail.id)}`;
    a.hidden = false;
  });

  // ------------------------------------------------------------------ filters

  let wanted = null; // an instrument asked for by the route before the list was there
  async function loadInstruments() {
    let status;
    try { status = await get("/api/status"); } catch (e) { return; }
    const sel = $("#pk-instrument");
    const keep = wanted || sel.value;
    wanted = null;
    const readable = status.partners.flatMap((p) => p.instruments)
      .filter((t) => t.values !== null); // a tile without values: its data is not ours to read
    const opts = readable.map((t) => el("option", { value: t.instrument,
      text: `${t.instrument} · ${t.partner}` }));
    if (you && you.role === "operator") {
      opts.push(el("option", { value: UNKNOWN, text: "unknown topics (station)" }));
    }
    sel.replaceChildren(...opts);
    if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
    if (shown) load();
  }
  for (const id of ["#pk-instrument", "#pk-kind", "#pk-limit"]) {
    $(id).addEventListener("change", () => {
      if (id === "#pk-instrument" && $(id).value) {
        history.replaceState(null, "",
          window.ilrsTime.withTime(`#/packets/${encodeURIComponent($(id).value)}`));
      }
      load();
    });
  }
  $("#pk-filters").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });

  // ------------------------------------------------------------------ the list

  // ``fresh``: new packets came (following live): the list is updated under the reader, who
  // keeps the packet shown, the focus and the rows in sight.
  async function load(fresh = false) {
    if (!token || $("#packets").hidden) return;
    const seq = ++loadSeq;
    if (!fresh) unshown = true;
    $("#pk-msg").textContent = "";
    const denied = Boolean(you && you.role === "viewer");
    $("#pk-filters").hidden = denied;
    $(".pk-cols").hidden = denied;
    if (denied) {
      show([], "Viewers see station status only: packets carry raw bytes and values, which " +
        "need an operator or partner token.");
      return;
    }
    const id = $("#pk-instrument").value;
    if (!id) { show([], "No instrument whose packets this token may read."); return; }
    const w = window.ilrsTime.window(); // the time conductor's (timebar.js)
    const q = new URLSearchParams({ limit: $("#pk-limit").value,
      start: String(Math.floor(w.start)), stop: String(Math.floor(w.stop)) });
    const kind = $("#pk-kind").value;
    if (id !== UNKNOWN) q.set("kind", kind);
    const path = id === UNKNOWN ? `/api/packets/unknown?${q}`
      : `/api/instruments/${encodeURIComponent(id)}/packets?${q}`;
    if (!fresh) $("#pk-count").textContent = "loading…";
    let doc;
    try { doc = await get(path); } catch (e) {
      const why = `The packets could not be read: ${e.message}`;
      // following, a failed ask leaves the list as it was (the next one may do better)
      if (seq === loadSeq && fresh) $("#pk-msg").textContent = why;
      else if (seq === loadSeq) { unshown = false; show([], why); }
      return;
    }
    // Paused meanwhile: a follow's answer is held, unless the list still shows an earlier
    // choice (the follow took over the chosen instrument's load, which it answers too).
    if (seq !== loadSeq || (fresh && !following() && !unshown)) return;
    unshown = false;
    const keep = current >= 0 && list[current] ? list[current] : null;
    show(doc.packets, null, keep, fresh);
  }

  const key = (p) => `${p.recv_ns}/${p.hex.slice(0, 64)}/${p.reason || ""}`;

  // The row a reader sees at the top of the scrolled list (the one shown if it is in sight),
  // and how far below the top it is: after a live update the same row is put there again.
  function anchorOf(scroller) {
    const rows = [...$("#pk-rows").children];
    const top = scroller.scrollTop;
    const inSight = (tr) => tr.offsetTop + tr.offsetHeight > top &&
      tr.offsetTop < top + scroller.clientHeight;
    const tr = (current >= 0 && rows[current] && inSight(rows[current])) ? rows[current]
      : rows.find(inSight);
    return tr ? { key: key(list[Number(tr.dataset.i)]), at: tr.offsetTop - top } : null;
  }

  function show(fetched, message, keep = null, fresh = false) {
    const body = $("#pk-rows");
    const scroller = $(".pk-list");
    const hadFocus = body.contains(document.activeElement);
    // at the top the newest are meant to be seen coming in; scrolled down, the rows stay put
    const anchor = fresh && scroller.scrollTop > 0 ? anchorOf(scroller) : null;
    const keepKey = keep ? key(keep) : null;
    let packets = fetched;
    // the packet shown is not pulled away from under the reader when newer ones push it out
    if (fresh && keep && !fetched.some((p) => key(p) === keepKey)) packets = [...fetched, keep];
    list = packets;
    if (message) $("#pk-msg").textContent = message;
    body.replaceChildren(...packets.map((p, i) => {
      const status = p.kind === "quarantine"
        ? el("span", { class: "pk-q", text: p.reason, title: p.detail || "" })
        : el("span", { class: "pk-ok", text: "accepted" });
      return el("tr", { tabindex: "-1", "data-i": String(i), "data-kind": p.kind,
        "aria-selected": "false" },
      el("td", { class: "num" }, el("time", { datetime: new Date(p.recv_ns / 1e6).toISOString(),
        text: utc(p.recv_ns) })),
      el("td", { class: "num", text: p.apid_hex || "—" }),
      el("td", { class: "num", text: p.seq ?? "—" }),
      el("td", { class: "num", text: String(p.length) }),
      el("td", {}, status));
    }));
    $("#pk-empty").hidden = packets.length > 0 || Boolean(message);
    const q = fetched.filter((p) => p.kind === "quarantine").length;
    $("#pk-count").textContent = message ? "" : `${fetched.length} packet` +
      `${fetched.length === 1 ? "" : "s"}${q ? ` · ${q} quarantined` : ""}`;
    const again = keepKey === null ? -1 : packets.findIndex((p) => key(p) === keepKey);
    const same = fresh && again >= 0; // the same packet stays shown: its dump is not redrawn
    select(again >= 0 ? again : packets.length ? 0 : -1, false, !same);
    const rows = body.children;
    if (same && hadFocus) rows[again].focus({ preventScroll: true });
    if (anchor) {
      const k = packets.findIndex((p) => key(p) === anchor.key);
      if (k >= 0) scroller.scrollTop = rows[k].offsetTop - anchor.at;
    }
  }

  function select(i, focus = true, repaint = true) {
    current = i;
    const rows = [...$("#pk-rows").children];
    rows.forEach((tr, k) => {
      tr.setAttribute("aria-selected", String(k === i));
      tr.tabIndex = k === (i < 0 ? 0 : i) ? 0 : -1; // one tab stop: the selected row
    });
    if (i < 0) { $("#pk-detail").hidden = true; return; }
    if (focus) { rows[i].focus(); rows[i].scrollIntoView({ block: "nearest" }); }
    if (repaint) paint(list[i]);
  }

  $("#pk-rows").addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr[data-i]");
    if (tr) select(Number(tr.dataset.i));
  });
  $("#pk-rows").addEventListener("keydown", (ev) => {
    const n = list.length;
    if (!n) return;
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10 };
    if (ev.key in moves) select(Math.min(n - 1, Math.max(0, current + moves[ev.key])));
    else if (ev.key === "Home") select(0);
    else if (ev.key === "End") select(n - 1);
    else return;
    ev.preventDefault();
  });

  // ------------------------------------------------------------------ one packet

  function fmt(v) {
    if (v === null || v === undefined) return "—";
    if (Array.isArray(v)) {
      const shown = v.slice(0, 12).map(fmt).join(", ");
      return `[${shown}${v.length > 12 ? `, … ${v.length} in all` : ""}]`;
    }
    if (typeof v === "number" && !Number.isInteger(v)) return String(Number(v.toPrecision(7)));
    return String(v);
  }

  function paint(p) {
    pinned = hovered = focused = null;
    $("#pk-detail").hidden = false;
    const what = p.kind === "quarantine" ? `quarantined: ${p.reason}` : "accepted";
    $("#pk-title").textContent = `Packet ${p.apid_hex || ""} seq ${p.seq ?? "—"} · ${what}`;
    const dl = $("#pk-summary");
    const item = (k, v) => [el("dt", { text: k }), el("dd", { text: v })];
    dl.replaceChildren(
      ...item("Received", utc(p.recv_ns)),
      ...item("Packet time", utc(p.time_ns)),
      ...item("APID", p.apid_hex || "—"),
      ...item("Sequence count", p.seq ?? "—"),
      ...item("Length", `${p.length} octets`),
      ...(p.variant ? item("Variant", p.variant) : []),
      ...(p.topic ? item("Topic", p.topic) : []));
    const why = $("#pk-why");
    const lines = [];
    if (p.kind === "quarantine") lines.push(`Quarantined as ${p.reason}: ${p.detail || ""}`);
    if (p.decode_error && p.kind === "quarantine" && p.decode_error.startsWith(`${p.reason}:`)) {
      lines.push("The profile cannot decode it for the same reason: no fields, only its octets.");
    } else if (p.decode_error) lines.push(`Not decoded: ${p.decode_error}`);
    why.textContent = lines.join("\n");
    why.hidden = !lines.length;
    why.dataset.kind = p.kind;
    dump(p.hex);
    fields(p);
  }

  function dump(hexText) {
    const octets = hexText.match(/../g) || [];
    const rows = [];
    for (let at = 0; at < octets.length; at += PER_LINE) {
      const line = octets.slice(at, at + PER_LINE);
      const cells = line.map((h, k) => el("span", { class: "o", "data-o": String(at + k),
        text: h }));
      const ascii = line.map((h) => {
        const c = parseInt(h, 16);
        return c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : ".";
      }).join("");
      rows.push(el("tr", {}, el("th", { scope: "row", class: "off", text: hex(at, 4) }),
        el("td", { class: "hexs" }, ...cells), el("td", { class: "ascii", text: ascii })));
    }
    $("#pk-dump").replaceChildren(...rows);
  }

  function fields(p) {
    const groups = [["header", "Primary header"], ["time", "Time code"], ["data", "Fields"],
      ["derived", "Derived (no octets of their own)"]];
    const all = [...p.header, ...p.fields];
    const body = $("#pk-field-rows");
    const rows = [];
    for (const [group, title] of groups) {
      const mine = all.filter((f) => f.group === group);
      if (!mine.length) continue;
      rows.push(el("tr", { class: "grp" },
        el("th", { colspan: "6", scope: "colgroup", text: title })));
      for (const f of mine) {
        const bits = f.bit_offset === null || f.bit_offset === undefined ? "—"
          : `${f.bit_offset}+${f.bit_width}${f.count ? ` ×${f.count}` : ""}`;
        const oct = !f.octets ? "—" : f.octets[1] - f.octets[0] === 1 ? String(f.octets[0])
          : `${f.octets[0]}–${f.octets[1] - 1}`;
        let value = f.ignored ? "(spare)" : fmt(f.value);
        if (f.group === "header" && f.name === "apid") value = hex(f.value, 3);
        if (f.group === "time" && f === mine[0]) value = utc(p.time_ns); // the code's time
        const state = f.state === null || f.state === undefined ? "" : ` st-${f.state}`;
        const tr = el("tr", { tabindex: f.spans.length ? "0" : "-1", "data-name": f.name,
          "data-group": f.group, "data-spans": JSON.stringify(f.spans),
          class: f.ignored ? "ignored" : "" },
        el("th", { scope: "row", title: f.description || "", text: f.name }),
        el("td", { class: "num", text: fmt(f.raw) }),
        el("td", { class: `num val${state}`, text: value }),
        el("td", { text: f.units || "" }),
        el("td", { class: "num", text: bits, title: "bit offset + width (× elements)" }),
        el("td", { class: "num", text: oct }));
        rows.push(tr);
      }
    }
    if (!p.header.length && !p.fields.length) {
      rows.push(el("tr", {}, el("td", { colspan: "6", class: "meta",
        text: "Nothing could be decoded; the octets are above." })));
    }
    body.replaceChildren(...rows);
  }

  // Light the octets of a field row (partly covered octets are marked so), and the row: the
  // row under the mouse or with the focus, whichever came last, else the one clicked.
  let hovered = null;
  let focused = null;
  function light(tr) {
    for (const o of $("#pk-dump").querySelectorAll(".o.hl, .o.part")) {
      o.classList.remove("hl", "part");
    }
    for (const r of $("#pk-field-rows").querySelectorAll("tr.hl")) r.classList.remove("hl");
    const target = tr || pinned;
    if (!target) return;
    target.classList.add("hl");
    const octs = $("#pk-dump").querySelectorAll(".o");
    for (const [a, b] of JSON.parse(target.dataset.spans || "[]")) {
      for (let o = Math.floor(a / 8); o < Math.ceil(b / 8) && o < octs.length; o++) {
        const whole = a <= o * 8 && b >= o * 8 + 8;
        octs[o].classList.add(whole ? "hl" : "part");
      }
    }
  }
  const fieldRow = (ev) => ev.target.closest && ev.target.closest("#pk-field-rows tr[data-spans]");
  const fieldBody = $("#pk-field-rows");
  fieldBody.addEventListener("mouseover", (ev) => {
    hovered = fieldRow(ev);
    light(hovered || focused);
  });
  fieldBody.addEventListener("mouseleave", () => { hovered = null; light(focused); });
  fieldBody.addEventListener("focusin", (ev) => { focused = fieldRow(ev); light(focused); });
  fieldBody.addEventListener("focusout", () => { focused = null; light(hovered); });
  fieldBody.addEventListener("click", (ev) => {
    const tr = fieldRow(ev);
    if (!tr) return;
    pinned = pinned === tr ? null : tr;
    light(tr);
  });

  // An octet under the mouse: the fields that lie in it.
  $("#pk-dump").addEventListener("mouseover", (ev) => {
    const o = ev.target.closest(".o");
    if (!o) return;
    const at = Number(o.dataset.o) * 8;
    const inIt = [...fieldBody.querySelectorAll("tr[data-spans]")]
      .filter((tr) => JSON.parse(tr.dataset.spans).some(([a, b]) => a < at + 8 && b > at));
    const names = inIt.map((tr) => tr.dataset.name);
    o.title = `octet ${o.dataset.o}${names.length ? `: ${names.join(", ")}` : ""}`;
    light(inIt.length ? inIt[inIt.length - 1] : focused); // the last: a sub-field over its parent
  });
  $("#pk-dump").addEventListener("mouseleave", () => light(focused));
})();
