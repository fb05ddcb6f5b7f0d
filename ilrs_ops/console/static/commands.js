/* ILRS operations console, commanding: the station's command history and approval queue on
 * the overview; on an instrument's page a form generated from its command definitions
 * (GET /api/instruments/{id}/commands: types, ranges, units, enums as selects). A hazardous
 * command shows its exact packet (POST /api/commands/preview) before it is requested; a
 * second operator approves it in the queue. Stages update live from the WebSocket, which
 * console.js hands over as `ilrs:command` events (with `ilrs:session`, `ilrs:detail`). */
"use strict";
(() => {
  const { $, el } = window.ilrsDom; // dom.js
  const KEEP = 200; // records kept on the page
  let token = null;
  let you = null; // {name, role, partner}
  const records = new Map(); // id -> record
  let inst = null; // {id, defs: [...], queue} of the open instrument page
  let pending = null; // the request the confirmation dialog is about

  // ------------------------------------------------------------------ API

  async function call(method, path, body) {
    const r = await fetch(path, {
      method,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let doc = null;
    try { doc = await r.json(); } catch (e) { /* not JSON */ }
    return { ok: r.ok, status: r.status, doc };
  }

  function why(res) {
    const d = res.doc && res.doc.detail;
    const text = typeof d === "string" ? d : d ? JSON.stringify(d) : "";
    return `${res.status === 403 ? "Not allowed" : `Refused (${res.status})`}${text ? `: ${text}` : ""}`;
  }

  const utc = (ns) => (ns ? new Date(ns / 1e6).toISOString().slice(11, 19) : "—");
  const argText = (args) => Object.entries(args || {}).map(([k, v]) => `${k}=${v}`).join(" ");

  // ------------------------------------------------------------------ session

  window.addEventListener("ilrs:session", (ev) => {
    token = ev.detail.token;
    you = ev.detail.you;
    records.clear();
    $("#commands").hidden = !token;
    if (token) load(); else render();
  });
  window.addEventListener("ilrs:resync", () => { if (token) load(); });
  window.addEventListener("ilrs:command", (ev) => { put(ev.detail); render(); });

  async function load() {
    const res = await call("GET", `/api/commands?limit=${KEEP}`);
    if (!res.ok) { msg(why(res), true); return; }
    for (const r of res.doc.commands) put(r);
    render();
  }

  function put(r) {
    const cur = records.get(r.id);
    if (cur && cur.stages.length > r.stages.length) return; // an older message arrived late
    records.set(r.id, r);
  }

  function msg(text, bad) {
    const m = $("#cmd-msg");
    m.textContent = text;
    m.classList.toggle("bad", Boolean(bad));
  }

  // ------------------------------------------------------------------ overview

  const isOperator = () => you && you.role === "operator";

  function render() {
    const all = [...records.values()].sort((a, b) => b.requested_ns - a.requested_ns);
    const waiting = all.filter((r) => r.state === "queued" && r.waiting === "approval");
    const open = all.filter((r) => !r.final).length;
    $("#cmd-counts").textContent = all.length ? `${open} open · ${waiting.length} to approve` : "";
    keepFocus($("#approval-list"), () => {
      $("#approval-list").replaceChildren(...waiting.map(approvalRow));
    });
    $("#approval-empty").hidden = waiting.length > 0;
    $("#cmd-list").replaceChildren(...all.slice(0, 50).map(historyRow));
    $("#cmd-empty").hidden = all.length > 0;
    if (inst) renderInstrument();
  }

  // A live update re-renders a list under the keyboard: keep the focus on the same button.
  function keepFocus(list, draw) {
    const a = document.activeElement;
    const key = a && list.contains(a) ? [a.closest("tr").dataset.id, a.dataset.act] : null;
    draw();
    if (key) {
      const again = list.querySelector(`tr[data-id="${CSS.escape(key[0])}"] button[data-act="${key[1]}"]`);
      if (again) again.focus();
    }
  }

  function approvalRow(r) {
    const tr = el("tr", { "data-id": r.id });
    const raw = Object.keys(r.raw || {}).length ? ` (raw ${argText(r.raw)})` : "";
    tr.append(
      el("td", { text: utc(r.requested_ns) }),
      el("td", { text: r.instrument }),
      el("td", {}, el("span", { class: "hazard", text: "⚠ " }), r.command),
      el("td", { text: argText(r.args) + raw }),
      el("td", { text: `${r.requested_by} (${r.requested_role})` }),
    );
    const acts = el("td", { class: "acts" });
    const mine = you && r.requested_by === you.name;
    if (isOperator()) {
      const approve = el("button", { type: "button", "data-act": "approve", text: "Approve" });
      if (mine) {
        approve.setAttribute("aria-disabled", "true");
        approve.title = "you asked for it: a second operator approves";
      }
      acts.append(approve, el("button", { type: "button", "data-act": "reject", text: "Reject" }));
    }
    if (isOperator() || mine) acts.append(el("button", { type: "button", "data-act": "cancel", text: "Cancel" }));
    tr.append(acts);
    return tr;
  }

  function historyRow(r) {
    const tr = el("tr", { "data-id": r.id });
    const state = el("span", { class: `state ${r.state}`, text: r.state.replace("_", " ") });
    const stages = r.stages.map((s) => `${s.stage} ${utc(s.time_ns)}`).join(" · ");
    const failed = r.reason ? ` — at ${r.failed_stage}: ${r.reason}` : r.waiting ? ` — waiting for ${r.waiting}` : "";
    tr.append(
      el("td", { text: utc(r.requested_ns) }),
      el("td", { text: r.instrument }),
      el("td", { text: r.hazardous ? `⚠ ${r.command}` : r.command }),
      el("td", { text: argText(r.args) }),
      el("td", { text: r.requested_by }),
      el("td", {}, state),
      el("td", { class: "meta", text: stages + failed }),
    );
    return tr;
  }

  $("#approval-list").addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-act]");
    if (!b || b.getAttribute("aria-disabled") === "true") {
      if (b) msg(b.title, true);
      return;
    }
    const r = records.get(b.closest("tr").dataset.id);
    if (!r) return;
    const act = b.dataset.act;
    let body;
    if (act === "reject") {
      const reason = window.prompt(`Reject ${r.command} on ${r.instrument}: why?`, "");
      if (reason === null) return;
      body = { reason };
    }
    const res = await call("POST", `/api/commands/${encodeURIComponent(r.id)}/${act}`, body);
    if (res.ok) {
      put(res.doc);
      msg(`${act === "approve" ? "Approved" : act === "reject" ? "Rejected" : "Cancelled"} ${r.command} on ${r.instrument}: now ${res.doc.state.replace("_", " ")}.`);
      render();
    } else {
      msg(why(res), true);
    }
  });

  // ------------------------------------------------------------------ instrument page

  window.addEventListener("ilrs:detail", async (ev) => {
    inst = null;
    $("#cmd-panel").hidden = true;
    const id = ev.detail.id;
    if (!id || !token || !you || you.role === "viewer") return;
    const res = await call("GET", `/api/instruments/${encodeURIComponent(id)}/commands`);
    if (!res.ok || !res.doc.commands.length) return;
    inst = { id, defs: res.doc.commands, queue: res.doc.queue };
    const select = $("#cmd-name");
    select.replaceChildren(...inst.defs.map((c) => el("option", {
      value: c.name, text: c.hazardous ? `${c.name} (hazardous)` : c.name,
    })));
    $("#cmd-panel").hidden = false;
    $("#cmd-form-msg").textContent = "";
    showForm();
    renderInstrument();
  });

  $("#cmd-name").addEventListener("change", showForm);

  function def() {
    return inst && inst.defs.find((c) => c.name === $("#cmd-name").value);
  }

  function showForm() {
    const c = def();
    if (!c) return;
    const about = [c.description || ""];
    if (c.hazardous) about.push("Hazardous: a second operator approves it before it is sent.");
    if (c.pre.length) about.push(`Sent only when ${c.pre.join(" and ")}.`);
    const v = c.verify;
    about.push(`Verified: acknowledged within ${v.received_s} s` +
      (v.executed.length ? `, then ${v.executed.join(" and ")} within ${v.executed_s} s.` : "."));
    $("#cmd-about").textContent = about.filter(Boolean).join(" ");
    $("#cmd-about").classList.toggle("hazard", c.hazardous);
    const fields = c.arguments.map((a) => {
      let input;
      if (a.enum) {
        input = el("select", { name: a.name, id: `arg-${a.name}` },
          ...a.enum.map((label) => el("option", { value: label, text: label })));
        if (a.default != null) input.value = String(a.default);
      } else {
        input = el("input", { name: a.name, id: `arg-${a.name}`, type: "number", required: "",
          min: String(a.range[0]), max: String(a.range[1]),
          step: a.type.startsWith("f") || a.summary.includes("calibrated") ? "any" : "1" });
        if (a.default != null) input.value = String(a.default);
      }
      input.setAttribute("aria-describedby", `arg-${a.name}-about`);
      return el("label", { for: `arg-${a.name}` }, a.units ? `${a.name} (${a.units})` : a.name, input,
        el("span", { class: "unit", id: `arg-${a.name}-about`, text: a.summary }));
    });
    $("#cmd-args").replaceChildren(...fields);
    $("#cmd-send").textContent = c.hazardous ? "Review and request…" : "Send";
  }

  function formArgs(c) {
    const args = {};
    for (const a of c.arguments) {
      const v = $(`#arg-${CSS.escape(a.name)}`).value;
      if (v === "") continue; // the server names what is missing
      args[a.name] = a.enum ? v : Number(v);
    }
    return args;
  }

  function formMsg(text, bad) {
    const m = $("#cmd-form-msg");
    m.textContent = text;
    m.className = bad ? "error" : "meta";
  }

  $("#cmd-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const c = def();
    if (!c || !inst) return;
    const body = { instrument: inst.id, command: c.name, args: formArgs(c), id: crypto.randomUUID() };
    if (c.hazardous) {
      const res = await call("POST", "/api/commands/preview", body);
      if (!res.ok) { formMsg(why(res), true); return; }
      pending = body;
      $("#confirm-what").textContent = `${c.name} on ${inst.id}: ` + (c.arguments.length
        ? `${argText(res.doc.args)} (raw ${argText(res.doc.raw)})` : "no arguments");
      $("#confirm-packet").textContent = res.doc.packet.replace(/(..)/g, "$1 ").trim() +
        `\n(sequence count ${res.doc.seq})`;
      $("#confirm-unmet").textContent = res.doc.unmet ? `Cannot be sent now: ${res.doc.unmet}` : "";
      $("#confirm-ok").disabled = Boolean(res.doc.unmet);
      $("#confirm-dialog").showModal();
      return;
    }
    await send(body);
  });

  async function send(body) {
    $("#cmd-send").disabled = true;
    try {
      const res = await call("POST", "/api/commands", body);
      if (!res.ok) { formMsg(why(res), true); return; }
      put(res.doc);
      render();
      formMsg(`${body.command}: ${res.doc.state.replace("_", " ")}${res.doc.waiting ? ` (waiting for ${res.doc.waiting})` : ""}`);
    } finally {
      $("#cmd-send").disabled = false;
    }
  }

  $("#confirm-form").addEventListener("submit", async () => {
    const body = pending;
    pending = null;
    if (body) await send(body);
    $("#cmd-send").focus();
  });
  $("#confirm-cancel").addEventListener("click", () => {
    pending = null;
    $("#confirm-dialog").close();
    $("#cmd-send").focus();
  });

  function renderInstrument() {
    if (!inst) return;
    const mine = [...records.values()].filter((r) => r.instrument === inst.id)
      .sort((a, b) => b.requested_ns - a.requested_ns).slice(0, 20);
    $("#cmd-inst-list").replaceChildren(...mine.map((r) => {
      const li = el("li", { "data-id": r.id });
      li.append(el("span", { class: `state ${r.state}`, text: r.state.replace("_", " ") }),
        ` ${utc(r.requested_ns)} ${r.command} ${argText(r.args)} — ${r.requested_by}`,
        r.reason ? ` — at ${r.failed_stage}: ${r.reason}` : "");
      return li;
    }));
    const q = inst.queue;
    $("#cmd-queue").textContent = q && q.held ? `queue held by ${q.held_by}` : "";
  }
})();
