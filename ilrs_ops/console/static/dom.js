/* ILRS operations console: the two DOM helpers every script of the page uses, loaded first. */
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
};
