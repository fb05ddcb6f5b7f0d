/* ILRS operations console: the operator's daily tools, reached from the header's Tools menu.
 * #/profiles  upload a profile (PUT /api/profiles/{partner}/{instrument}, GET for the current
 *             one): the text with line numbers, the API's located problems beside it (a click
 *             puts the cursor on the line), success once the instrument is live on the page.
 *             Operators any partner, a partner its own, viewers none (as the API).
 * #/audit     operators: GET /api/audit filtered by who, action and instrument over the time
 *             bar's window (timebar.js), newest first, a page at a time (the older page ends
 *             where this one starts).
 * #/export    GET /api/instruments/{id}/export as a form: channels, window, Parquet/CSV/Arrow;
 *             the file downloads under the name the API gives it (instrument and window). */
"use strict";
(() => {
  const { $, el } = window.ilrsDom; // dom.js
  const { isoUtc, parseUtc } = window.ilrsDom;
  const NS = 1e9;
  const AUDIT_KINDS = ["ack", "shelve", "unshelve", "profile", "dashboard"];
  let token = null;
  let you = null;
  let view = null;
  let status = null; // GET /api/status: partners and instruments this token may see
  const tiles = new Set(); // instruments the page shows (console.js tells each catalog)

  const auth = () => ({ Authorization: `Bearer ${token}` });
  async function answer(r) {
    let doc = null;
    const text = await r.text();
    try { doc = JSON.parse(text); } catch (e) { /* not JSON */ }
    return { r, doc, text };
  }
  function why(res) {
    const d = res.doc && res.doc.detail;
    return `${res.r.status}${typeof d === "string" ? `: ${d}` : ""}`;
  }
  async function getJson(path) {
    const res = await answer(await fetch(path, { headers: auth() }));
    if (!res.r.ok) throw new Error(why(res));
    return res.doc;
  }
  const utc = (ns) => isoUtc(ns / NS);
  const hexApid = (a) => `0x${a.toString(16).padStart(3, "0")}`;
  function option(value, text, selected) {
    const o = el("option", { value, text });
    if (selected) o.selected = true;
    return o;
  }
  function fillSelect(sel, items, keep = true) { // keeps the choice (and focus) when it can
    const was = sel.value;
    sel.replaceChildren(...items.map(([v, t]) => option(v, t)));
    if (keep && items.some(([v]) => v === was)) sel.value = was;
  }
  async function loadStatus() {
    status = await getJson("/api/status");
    return status;
  }
  const instruments = () => (status ? status.partners.flatMap((p) => p.instruments) : []);
  const isOperator = () => you && you.role === "operator";

  // ------------------------------------------------------------------ the menu

  const menu = $("#nav-tools");
  const menuLinks = [...menu.querySelectorAll("a")];
  menu.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && menu.open) { menu.open = false; menu.querySelector("summary").focus(); }
  });
  document.addEventListener("click", (e) => { if (menu.open && !menu.contains(e.target)) menu.open = false; });
  for (const a of menuLinks) a.addEventListener("click", () => { menu.open = false; });

  // ------------------------------------------------------------------ profile upload

  const pf = el("section", { id: "profiles", class: "tool", hidden: "", "aria-labelledby": "pf-title" },
    el("div", { class: "row" },
      el("h2", { id: "pf-title", tabindex: "-1", text: "Profile upload" }),
      el("span", { class: "help", text: "one YAML file per instrument (docs/profiles.md); " +
        "checked as `ilrs-ops profiles check` does, then in force without a restart" })),
    el("form", { id: "pf-form", class: "ev-filters" },
      el("label", {}, "Partner ", el("select", { id: "pf-partner" })),
      el("label", {}, "Instrument ", el("input", { id: "pf-instrument", size: "18",
        list: "pf-known", autocomplete: "off", spellcheck: "false", required: "",
        pattern: "[a-z0-9][a-z0-9_-]*", title: "the profile's instrument id" })),
      el("datalist", { id: "pf-known" }),
      el("button", { type: "button", id: "pf-load", text: "Load the current profile" }),
      el("label", { class: "file" }, "Open a file ",
        el("input", { type: "file", id: "pf-file", accept: ".yaml,.yml,application/yaml,text/yaml" })),
      el("button", { type: "submit", id: "pf-upload", text: "Check and upload" })),
    el("p", { id: "pf-msg", class: "tool-msg", role: "status", "aria-live": "polite" }),
    el("div", { class: "pf-cols" },
      el("div", { class: "pf-editor" },
        el("pre", { id: "pf-gutter", class: "pf-gutter", "aria-hidden": "true" }),
        el("textarea", { id: "pf-text", spellcheck: "false", wrap: "off", autocomplete: "off",
          "aria-label": "Profile YAML", "aria-describedby": "pf-problems-title",
          placeholder: "paste a profile here, open a file, or load the current profile" })),
      el("section", { class: "pf-side", "aria-labelledby": "pf-problems-title" },
        el("h3", { id: "pf-problems-title", text: "Problems" }),
        el("ol", { id: "pf-problems", class: "pf-problems" }),
        el("p", { id: "pf-problems-none", class: "meta", text: "None found yet: upload to check." }))));
  $("#main").append(pf);
  const text = $("#pf-text");
  let problemLines = new Map(); // line -> messages

  function gutter() {
    const n = text.value.split("\n").length;
    const kids = [];
    for (let k = 1; k <= n; k += 1) {
      const p = problemLines.get(k);
      kids.push(p ? el("b", { title: p.join("\n"), "data-line": String(k) }, String(k)) : String(k), "\n");
    }
    $("#pf-gutter").replaceChildren(...kids);
    $("#pf-gutter").scrollTop = text.scrollTop;
  }
  text.addEventListener("input", gutter);
  text.addEventListener("scroll", () => { $("#pf-gutter").scrollTop = text.scrollTop; });

  function lineStart(line) {
    const lines = text.value.split("\n");
    let at = 0;
    for (let k = 0; k < line - 1 && k < lines.length; k += 1) at += lines[k].length + 1;
    return at;
  }
  function goToLine(line, column) {
    const at = lineStart(line) + Math.max(0, (column || 1) - 1);
    text.focus();
    text.setSelectionRange(at, at);
    const lh = parseFloat(getComputedStyle(text).lineHeight) || 18;
    const want = (line - 1) * lh;
    if (want < text.scrollTop || want > text.scrollTop + text.clientHeight - 2 * lh) {
      text.scrollTop = Math.max(0, want - text.clientHeight / 3);
    }
    $("#pf-gutter").scrollTop = text.scrollTop; // now, not at the scroll event's next frame
  }

  function pfMsg(message, kind) {
    const m = $("#pf-msg");
    m.replaceChildren(...(Array.isArray(message) ? message : [message]));
    m.dataset.kind = kind || "";
  }

  function showProblems(problems) {
    problemLines = new Map();
    const list = $("#pf-problems");
    list.replaceChildren(...problems.map((p, k) => {
      const where = p.line ? `line ${p.line}${p.column ? `, column ${p.column}` : ""}` : p.file;
      const say = `${p.field ? `${p.field}: ` : ""}${p.message}`;
      if (p.line) problemLines.set(p.line, [...(problemLines.get(p.line) || []), say]);
      const body = [el("span", { class: "where", text: where }), el("span", { class: "what", text: say })];
      if (p.hint) body.push(el("span", { class: "hint", text: p.hint }));
      const item = p.line
        ? el("button", { type: "button", class: "problem", "data-line": String(p.line),
          title: `put the cursor on line ${p.line}` }, ...body)
        : el("div", { class: "problem" }, ...body);
      if (p.line) item.addEventListener("click", () => goToLine(p.line, p.column));
      return el("li", { "data-k": String(k) }, item);
    }));
    $("#pf-problems-none").hidden = problems.length > 0;
    $("#pf-problems-none").textContent = "No problems.";
    gutter();
  }

  function pfPartners() {
    const mine = isOperator() ? (status ? status.partners.map((p) => p.partner) : [])
      : you && you.partner ? [you.partner] : [];
    fillSelect($("#pf-partner"), mine.map((p) => [p, p]));
    $("#pf-partner").disabled = mine.length <= 1;
    pfKnown();
  }
  function pfKnown() {
    const partner = $("#pf-partner").value;
    $("#pf-known").replaceChildren(...instruments().filter((t) => t.partner === partner)
      .map((t) => el("option", { value: t.instrument, text: t.name || t.instrument })));
  }
  $("#pf-partner").addEventListener("change", pfKnown);

  // The partner and instrument the text names, to fill the form when it is empty.
  function named(yaml) {
    const get = (key) => {
      const m = yaml.match(new RegExp(`^${key}\\s*:\\s*["']?([A-Za-z0-9_-]+)`, "m"));
      return m ? m[1] : null;
    };
    return { partner: get("partner"), instrument: get("instrument") };
  }
  function adopt(yaml) {
    text.value = yaml;
    showProblems([]);
    $("#pf-problems-none").textContent = "None found yet: upload to check.";
    const n = named(yaml);
    if (n.instrument && !$("#pf-instrument").value) $("#pf-instrument").value = n.instrument;
    if (n.partner && [...$("#pf-partner").options].some((o) => o.value === n.partner)) {
      $("#pf-partner").value = n.partner;
      pfKnown();
    }
  }
  text.addEventListener("paste", () => setTimeout(() => adopt(text.value), 0));

  $("#pf-file").addEventListener("change", async (e) => {
    const f = e.target.files && e.target.files[0];
    if (!f) return;
    $("#pf-instrument").value = "";
    adopt(await f.text());
    pfMsg(`Opened ${f.name} (${f.size} bytes): not uploaded yet.`);
  });

  $("#pf-load").addEventListener("click", async () => {
    const partner = $("#pf-partner").value;
    const inst = $("#pf-instrument").value.trim();
    if (!partner || !inst) { pfMsg("Choose the partner and the instrument to load.", "bad"); $("#pf-instrument").focus(); return; }
    const res = await answer(await fetch(`/api/profiles/${encodeURIComponent(partner)}/${encodeURIComponent(inst)}`, { headers: auth() }));
    if (!res.r.ok) { pfMsg(`The profile could not be loaded: ${why(res)}`, "bad"); return; }
    adopt(res.text);
    pfMsg(`Loaded the current profile of ${partner}/${inst}: edit it, then upload.`);
    text.focus();
    text.setSelectionRange(0, 0);
    text.scrollTop = 0;
  });

  let waitingFor = null; // instrument uploaded, not yet on the page
  let catalogs = 0; // catalogs the page has had (a new one after each upload)
  let fallback = null;
  function live(inst) {
    const link = el("a", { href: `#/i/${encodeURIComponent(inst)}`, text: "open it" });
    pfMsg([`${inst} is live: the station overview shows it (`, link, ").",], "ok");
    loadStatus().then(pfPartners, () => {});
    $("#pf-msg").dataset.live = inst;
    waitingFor = null;
  }

  $("#pf-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const partner = $("#pf-partner").value;
    const inst = $("#pf-instrument").value.trim() || named(text.value).instrument || "";
    if (!inst) { pfMsg("Name the instrument (the profile's `instrument:`).", "bad"); $("#pf-instrument").focus(); return; }
    $("#pf-instrument").value = inst;
    if (!text.value.trim()) { pfMsg("There is no profile text to upload.", "bad"); text.focus(); return; }
    $("#pf-upload").disabled = true;
    const asked = catalogs;
    pfMsg(`Checking and uploading ${partner}/${inst}…`);
    delete $("#pf-msg").dataset.live;
    try {
      const res = await answer(await fetch(`/api/profiles/${encodeURIComponent(partner)}/${encodeURIComponent(inst)}`, {
        method: "PUT", headers: { ...auth(), "Content-Type": "application/yaml" }, body: text.value,
      }));
      if (res.r.status === 422 && res.doc && Array.isArray(res.doc.problems)) {
        showProblems(res.doc.problems);
        pfMsg(`Refused: ${res.doc.detail}. Nothing was written.`, "bad");
        return;
      }
      if (!res.r.ok) {
        showProblems([]);
        $("#pf-problems-none").textContent = "Not checked: refused before the check.";
        pfMsg(`Refused: ${why(res)}`, "bad");
        return;
      }
      showProblems([]);
      const d = res.doc;
      pfMsg(`Uploaded ${d.path} (${d.bytes} bytes, ${d.replaced ? "replaced" : "new"}); ` +
        "waiting for the station to take it…", "ok");
      // Live once the page has the new catalog (console.js tells it, maybe before this
      // answer); a page whose socket is down learns it from the status a little later.
      waitingFor = inst;
      if (catalogs > asked && tiles.has(inst)) live(inst);
      clearTimeout(fallback);
      fallback = setTimeout(async () => {
        if (waitingFor !== inst) return;
        try { await loadStatus(); } catch (err) { return; }
        if (waitingFor === inst && instruments().some((t) => t.instrument === inst)) live(inst);
      }, 10_000);
    } catch (err) {
      pfMsg(`The console did not answer: ${err.message}`, "bad");
    } finally {
      $("#pf-upload").disabled = false;
    }
  });

  window.addEventListener("ilrs:catalog", (ev) => {
    catalogs += 1;
    tiles.clear();
    for (const id of ev.detail.instruments) tiles.add(id);
    if (waitingFor && tiles.has(waitingFor)) live(waitingFor);
  });

  // ------------------------------------------------------------------ audit log

  const au = el("section", { id: "audit", class: "tool", hidden: "", "aria-labelledby": "au-title" },
    el("div", { class: "row" },
      el("h2", { id: "au-title", tabindex: "-1", text: "Audit log" }),
      el("span", { id: "au-count", class: "meta", role: "status", "aria-live": "polite" })),
    el("form", { id: "au-filters", class: "ev-filters" },
      el("label", {}, "Who ", el("input", { id: "au-who", size: "14", placeholder: "any",
        autocomplete: "off", spellcheck: "false", title: "token names, comma-separated" })),
      el("label", {}, "Action ", el("select", { id: "au-kind" }, option("", "any"),
        ...AUDIT_KINDS.map((k) => option(k, k)))),
      el("label", {}, "Instrument ", el("select", { id: "au-instrument" }, option("", "all"))),
      el("label", {}, "Per page ", el("select", { id: "au-limit" }, option("10", "10"),
        option("25", "25"), option("50", "50", true), option("100", "100"), option("200", "200"))),
      el("button", { type: "submit", id: "au-apply", text: "Apply" })),
    el("p", { id: "au-msg", class: "error", role: "alert" }),
    el("div", { class: "ev-scroll" },
      el("table", { id: "au-table" },
        el("thead", {}, el("tr", {}, ...["Time (UTC)", "Who", "Role", "Action", "Instrument",
          "Channel", "Detail"].map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", { id: "au-list" })),
      el("p", { id: "au-empty", class: "meta", hidden: "", text: "No actions match." })),
    el("div", { class: "row" },
      el("button", { type: "button", id: "au-newer", text: "← Newest", disabled: "" }),
      el("button", { type: "button", id: "au-older", text: "Older →", disabled: "" }),
      el("span", { id: "au-page", class: "meta" })));
  $("#main").append(au);
  let auPages = []; // stop of each page shown so far, ns as a decimal string (first: the window's)
  let auSeq = 0;

  // The time bar's window; realtime's ends a ms after now, so that what was just done is in it.
  function auWindow() {
    const w = window.ilrsTime.window();
    return w.live ? { start: w.start, stop: w.stop + 1e6 } : w;
  }
  window.addEventListener("ilrs:time", () => {
    if (view === "audit" && allowed("audit")) { auPage = 0; auLoad(0); }
  });

  function detailText(a) {
    const d = { ...a.detail };
    for (const k of ["who", "role", "partner"]) delete d[k];
    const parts = [];
    if (a.kind === "profile") {
      parts.push(`${d.replaced ? "replaced" : "new"} ${d.path || ""}`);
      if (typeof d.apid === "number") parts.push(`APID ${hexApid(d.apid)}`);
      if (d.bytes) parts.push(`${d.bytes} bytes`);
      if (d.sha256) parts.push(`sha256 ${d.sha256.slice(0, 12)}…`);
    } else {
      if (d.reason) parts.push(`“${d.reason}”`);
      if (d.until_ns) parts.push(`until ${utc(d.until_ns)}`);
      for (const [k, v] of Object.entries(d)) {
        if (!["reason", "until_ns", "until"].includes(k) && v !== null && v !== "") parts.push(`${k} ${typeof v === "object" ? JSON.stringify(v) : v}`);
      }
    }
    return parts.join(" · ");
  }

  async function auLoad(page) {
    const mine = ++auSeq;
    $("#au-msg").textContent = "";
    const w = auWindow();
    if (page === 0) auPages = [String(BigInt(Math.round(w.stop)))];
    const q = new URLSearchParams({ start: String(BigInt(Math.round(w.start))),
      stop: auPages[page], limit: $("#au-limit").value });
    if ($("#au-who").value.trim()) q.set("who", $("#au-who").value.trim());
    if ($("#au-kind").value) q.set("kind", $("#au-kind").value);
    if ($("#au-instrument").value) q.set("instrument", $("#au-instrument").value);
    let doc;
    let exact = [];
    try {
      const res = await answer(await fetch(`/api/audit?${q}`, { headers: auth() }));
      if (!res.r.ok) throw new Error(why(res));
      doc = res.doc;
      // ns since 1970 pass 2^53: a JS number rounds them (by up to 128 ns), and the next page
      // must end exactly where this one starts, so the digits are read from the text
      exact = [...res.text.matchAll(/"time_ns":\s*(\d+)/g)].map((m) => m[1]);
      if (exact.length !== doc.actions.length) exact = doc.actions.map((a) => String(a.time_ns));
      doc.actions.forEach((a, k) => { a.ns = exact[k]; });
    } catch (err) {
      if (mine === auSeq) $("#au-msg").textContent = `The audit log could not be read: ${err.message}`;
      return;
    }
    if (mine !== auSeq) return;
    const rows = [...doc.actions].reverse(); // newest first
    $("#au-list").replaceChildren(...rows.map((a) => {
      const inst = el("a", { href: `#/i/${encodeURIComponent(a.instrument)}`, text: a.instrument });
      return el("tr", { "data-kind": a.kind, "data-who": a.who || "", "data-instrument": a.instrument,
        "data-time": a.ns },
        el("td", { class: "num", text: utc(a.time_ns) }), el("td", { text: a.who || "—" }),
        el("td", { text: a.role || "—" }), el("td", { text: a.kind }), el("td", {}, inst),
        el("td", { text: a.channel || "" }), el("td", { class: "why", text: detailText(a) }));
    }));
    $("#au-empty").hidden = rows.length > 0;
    auPages = auPages.slice(0, page + 1);
    if (doc.truncated && rows.length) auPages.push(rows[rows.length - 1].ns);
    $("#au-older").disabled = !doc.truncated;
    $("#au-newer").disabled = page === 0;
    $("#au-page").textContent = `page ${page + 1}${doc.truncated ? "" : " (the last)"}`;
    $("#au-page").dataset.page = String(page);
    const span = rows.length ? ` · ${utc(rows[rows.length - 1].time_ns)} to ${utc(rows[0].time_ns)}` : "";
    $("#au-count").textContent = `${rows.length} action${rows.length === 1 ? "" : "s"}${span}`;
  }
  let auPage = 0;
  $("#au-filters").addEventListener("submit", (e) => { e.preventDefault(); auPage = 0; auLoad(0); });
  $("#au-older").addEventListener("click", () => {
    auPage += 1; auLoad(auPage).then(() => { if ($("#au-older").disabled) $("#au-newer").focus(); });
  });
  $("#au-newer").addEventListener("click", () => {
    auPage = 0; auLoad(0).then(() => { if ($("#au-newer").disabled) $("#au-older").focus(); });
  });

  // ------------------------------------------------------------------ export

  const ex = el("section", { id: "export", class: "tool", hidden: "", "aria-labelledby": "ex-title" },
    el("div", { class: "row" },
      el("h2", { id: "ex-title", tabindex: "-1", text: "Export telemetry" }),
      el("span", { class: "help", text: "samples of [from, to), streamed by the console; " +
        "CSV has units in its header and enum labels beside raw values" })),
    el("form", { id: "ex-form", class: "ex-form" },
      el("div", { class: "ev-filters" },
        el("label", {}, "Instrument ", el("select", { id: "ex-instrument" })),
        el("label", {}, "Window ", el("select", { id: "ex-window" },
          option("300", "last 5 min"), option("3600", "last 1 h", true), option("86400", "last 1 day"),
          option("custom", "from … to (UTC)"))),
        el("label", {}, "From ", el("input", { id: "ex-start", size: "20", placeholder: "2026-12-03 10:00:00", disabled: "" })),
        el("label", {}, "To ", el("input", { id: "ex-stop", size: "20", placeholder: "now", disabled: "" })),
        el("fieldset", { class: "ex-format" }, el("legend", { text: "Format" }),
          ...[["parquet", "Parquet"], ["csv", "CSV"], ["arrow", "Arrow IPC"]].map(([v, t], k) => {
            const r = el("input", { type: "radio", name: "ex-format", value: v });
            if (k === 0) r.checked = true;
            return el("label", {}, r, ` ${t}`);
          })),
        el("label", {}, el("input", { type: "checkbox", id: "ex-raw" }), " raw values too"),
        el("button", { type: "submit", id: "ex-go", text: "Download" })),
      el("fieldset", { id: "ex-channels", class: "ex-channels" },
        el("legend", {}, "Channels ",
          el("button", { type: "button", id: "ex-all", text: "all" }),
          el("button", { type: "button", id: "ex-none", text: "none" })),
        el("div", { id: "ex-chan-list", class: "ex-chan-list" }))),
    el("p", { id: "ex-msg", class: "tool-msg", role: "status", "aria-live": "polite" }));
  $("#main").append(ex);
  let exSeq = 0;

  function exInstruments() {
    fillSelect($("#ex-instrument"), instruments()
      .sort((a, b) => a.partner.localeCompare(b.partner) || a.instrument.localeCompare(b.instrument))
      .map((t) => [t.instrument, `${t.partner} / ${t.instrument}`]));
  }
  async function exChannels() {
    const mine = ++exSeq;
    const id = $("#ex-instrument").value;
    const box = $("#ex-chan-list");
    if (!id) { box.replaceChildren(); return; }
    let d;
    try { d = await getJson(`/api/instruments/${encodeURIComponent(id)}`); } catch (err) {
      if (mine === exSeq) $("#ex-msg").textContent = `The channels could not be read: ${err.message}`;
      return;
    }
    if (mine !== exSeq) return;
    const chans = d.channels || [];
    box.replaceChildren(...chans.map((c) => {
      const cb = el("input", { type: "checkbox", value: c.name, checked: "" });
      const units = c.units ? ` [${c.units}]` : c.enum ? " (enum)" : "";
      return el("label", { title: c.description || "" }, cb, ` ${c.name}${units}`);
    }));
  }
  $("#ex-instrument").addEventListener("change", exChannels);
  $("#ex-all").addEventListener("click", () => { for (const c of $("#ex-chan-list").querySelectorAll("input")) c.checked = true; });
  $("#ex-none").addEventListener("click", () => { for (const c of $("#ex-chan-list").querySelectorAll("input")) c.checked = false; });
  $("#ex-window").addEventListener("change", () => {
    const custom = $("#ex-window").value === "custom";
    $("#ex-start").disabled = !custom;
    $("#ex-stop").disabled = !custom;
    if (custom) $("#ex-start").focus();
  });

  $("#ex-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const msg = $("#ex-msg");
    msg.dataset.kind = "";
    const id = $("#ex-instrument").value;
    const chans = [...$("#ex-chan-list").querySelectorAll("input:checked")].map((c) => c.value);
    if (!chans.length) { msg.textContent = "Choose at least one channel."; msg.dataset.kind = "bad"; return; }
    let start, stop;
    if ($("#ex-window").value === "custom") {
      start = parseUtc($("#ex-start").value);
      stop = parseUtc($("#ex-stop").value);
      if (start === null || Number.isNaN(start) || Number.isNaN(stop)) {
        msg.textContent = "From and To: UTC times, e.g. 2026-12-03 10:00:00 (To empty: now)."; msg.dataset.kind = "bad"; return;
      }
      if (stop === null) stop = Date.now() * 1e6;
    } else {
      stop = Date.now() * 1e6;
      start = stop - Number($("#ex-window").value) * NS;
    }
    const fmt = $("#ex-form").querySelector("input[name=ex-format]:checked").value;
    const all = $("#ex-chan-list").querySelectorAll("input").length === chans.length;
    const q = new URLSearchParams({ format: fmt, start: String(BigInt(Math.round(start))),
      stop: String(BigInt(Math.round(stop))) });
    if (!all) q.set("channels", chans.join(","));
    if ($("#ex-raw").checked) q.set("raw", "true");
    $("#ex-go").disabled = true;
    msg.textContent = `Exporting ${id}, ${utc(start)} to ${utc(stop)}…`;
    try {
      const r = await fetch(`/api/instruments/${encodeURIComponent(id)}/export?${q}`, { headers: auth() });
      if (!r.ok) { msg.textContent = `Refused: ${why(await answer(r))}`; msg.dataset.kind = "bad"; return; }
      const cd = r.headers.get("Content-Disposition") || "";
      const m = cd.match(/filename="([^"]+)"/);
      const name = m ? m[1] : `${id}.${fmt}`;
      const blob = await r.blob();
      const url = URL.createObjectURL(blob);
      const a = el("a", { href: url, download: name, hidden: "" });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      msg.textContent = `Downloaded ${name} (${blob.size} bytes).`;
      msg.dataset.kind = "ok";
      msg.dataset.file = name;
    } catch (err) {
      msg.textContent = `The console did not answer: ${err.message}`;
      msg.dataset.kind = "bad";
    } finally {
      $("#ex-go").disabled = false;
    }
  });

  // ------------------------------------------------------------------ session and route

  const VIEWS = { profiles: [pf, "#pf-title"], audit: [au, "#au-title"], export: [ex, "#ex-title"] };
  for (const [s] of Object.values(VIEWS)) {
    s.querySelector(".row").after(el("p", { class: "denied-msg error", role: "alert" }));
  }
  const LINKS = { profiles: "#nav-profiles", audit: "#nav-audit", export: "#nav-export" };

  function allowed(v) {
    if (!you || you.role === "viewer") return false;
    return v !== "audit" || isOperator();
  }

  window.addEventListener("ilrs:session", (ev) => {
    token = ev.detail.token;
    you = ev.detail.you;
    status = null;
    menu.hidden = !token || !you || you.role === "viewer";
    $("#nav-audit").hidden = !isOperator();
    $("#au-list").replaceChildren();
    if (!token) { for (const [s] of Object.values(VIEWS)) s.hidden = true; view = null; return; }
    // A view opened before the session was known (a reload on #/audit) was judged without
    // knowing who asks: judge it again now.
    if (view) { const open = view; view = null; show(open); }
  });

  window.addEventListener("ilrs:route", (ev) => show(ev.detail.view));

  async function show(name) {
    const want = VIEWS[name] ? name : null;
    for (const [v, sel] of Object.entries(LINKS)) {
      if (v === want) $(sel).setAttribute("aria-current", "page"); else $(sel).removeAttribute("aria-current");
    }
    if (want) menu.querySelector("summary").setAttribute("aria-current", "true");
    else menu.querySelector("summary").removeAttribute("aria-current");
    const was = view;
    view = want;
    for (const [v, [s]] of Object.entries(VIEWS)) s.hidden = v !== want;
    if (!want || want === was) return;
    for (const [v, [s]] of Object.entries(VIEWS)) s.classList.toggle("denied", v === want && !allowed(v));
    if (!allowed(want)) { // said, not a blank page: the route was typed or bookmarked
      const [s, title] = VIEWS[want];
      s.hidden = false;
      s.querySelector(".denied-msg").textContent = want === "audit"
        ? "The audit log is for operators." : "Viewers see station status only.";
      $(title).focus();
      return;
    }
    $(VIEWS[want][1]).focus();
    if (want === "profiles") pfPartners(); // a partner's own folder at once; the rest to come
    try { await loadStatus(); } catch (err) { return; }
    if (view !== want) return;
    if (want === "profiles") pfPartners();
    if (want === "audit") {
      fillSelect($("#au-instrument"), [["", "all"], ...instruments().map((t) => [t.instrument, t.instrument])]);
      auPage = 0;
      auLoad(0);
    }
    if (want === "export") { exInstruments(); exChannels(); }
  }
})();
