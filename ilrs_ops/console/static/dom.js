/* ILRS operations console: the helpers every script of the page uses, loaded first: two for
   the DOM, a live plot's point append, the UTC time labels of every plot (uPlot time in
   seconds), and typed UTC times. */
"use strict";
window.ilrsDom = {
  $: (sel) => document.querySelector(sel),
  el: (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const kid of kids) e.append(kid);
    return e;
  },
  /** "2026-12-02 12:31:05Z" (with ms: "...05.123Z") of a uPlot time in seconds. */
  isoUtc: (sec, ms) => {
    const s = new Date(sec * 1e3).toISOString();
    return `${s.slice(0, 10)} ${s.slice(11, ms ? 23 : 19)}Z`;
  },
  /** Append a live point (x, ys: one y per series) to {x, ys} series sorted by x: older or
   *  equal x is dropped (false); after more than maxStep without data a null point goes first,
   *  so the plot shows a gap, not a line; at most keep points stay. */
  pushPoint: (live, x, ys, maxStep, keep) => {
    const last = live.x.length ? live.x[live.x.length - 1] : null;
    if (last !== null && x <= last) return false;
    if (last !== null && x - last > maxStep) {
      live.x.push((x + last) / 2);
      for (const y of live.ys) y.push(null);
    }
    live.x.push(x);
    live.ys.forEach((y, k) => y.push(ys[k]));
    if (live.x.length > keep) { live.x.shift(); for (const y of live.ys) y.shift(); }
    return true;
  },
  /** uPlot axis values: UTC time of day, with the date on the first tick of each day. */
  timeTicks: (u, splits, axisIdx, space, incr) => {
    let day = null;
    return splits.map((sec) => {
      const s = new Date(sec * 1e3).toISOString();
      const tod = incr < 1 ? s.slice(11, 23) : s.slice(11, 19);
      const d = s.slice(0, 10);
      const label = d !== day ? `${d}\n${tod}` : tod;
      day = d;
      return label;
    });
  },
  /** A typed UTC time in ns: "2026-12-03 17:00:00", "2026-12-03T17:00Z", "17:00" (today);
      naive times are UTC, as the API reads them. "" -> null; not a time -> NaN. */
  parseUtc: (text) => {
    const t = text.trim();
    if (!t) return null;
    let s = t.replace(" ", "T");
    if (/^\d\d:\d\d(:\d\d)?$/.test(s)) s = `${new Date().toISOString().slice(0, 10)}T${s}`;
    if (!/[zZ]|[+-]\d\d:?\d\d$/.test(s)) s += "Z";
    const ms = Date.parse(s);
    return Number.isNaN(ms) ? NaN : ms * 1e6;
  },
};
