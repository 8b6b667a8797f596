// Small DOM helpers shared by the views: element building (text only, never HTML strings from data), the status
// line (an aria-live region), an accessible modal dialog (instead of confirm()/prompt()) and busy buttons.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

// h("button.primary#id", {type: "button", onclick}, "text", child…)
export function h(tag, attrs, ...children) {
  const [name, ...rest] = tag.split(/(?=[.#])/);
  const el = document.createElement(name || "div");
  for (const part of rest) {
    if (part[0] === ".") el.classList.add(part.slice(1)); else el.id = part.slice(1);
  }
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k === "class") el.className = v;
      else if (k in el && typeof v !== "string") el[k] = v;
      else el.setAttribute(k, v === true ? "" : v);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

let messageTimer = null;
export function say(text, kind) {
  const el = $("#message");
  clearTimeout(messageTimer);
  el.textContent = text || "";
  el.className = "message" + (kind === "error" ? " error" : kind === "ok" ? " ok" : "");
  el.hidden = !text;
  if (text && kind !== "error") messageTimer = setTimeout(() => { el.hidden = true; }, 8000);
}
export const fail = (e) => say(e && e.message ? e.message : String(e), "error");

// A button that shows it is busy and reports errors instead of throwing.
export function action(label, run, attrs = {}) {
  const b = h("button", { type: "button", ...attrs }, label);
  b.addEventListener("click", async (ev) => {
    ev.preventDefault();
    if (b.getAttribute("aria-busy") === "true") return;
    b.setAttribute("aria-busy", "true");
    b.disabled = true;
    try { await run(b); } catch (e) { fail(e); } finally { b.disabled = false; b.removeAttribute("aria-busy"); }
  });
  return b;
}

// A modal dialog (the native <dialog>: focus trapped, Escape closes, focus returns). Resolves with the value of
// the chosen button ("" when dismissed).
export function ask(title, body, buttons) {
  const dialog = $("#dialog");
  $("#dialog-title").textContent = title;
  $("#dialog-body").replaceChildren(...[].concat(body).map((b) => (b instanceof Node ? b : h("p", null, b))));
  $("#dialog-actions").replaceChildren(...buttons.map((b) =>
    h("button", { value: b.value, class: b.danger ? "danger" : b.primary ? "primary" : "" }, b.label)));
  const opener = document.activeElement;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue || "");
      if (opener && opener.isConnected) opener.focus();
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

export function confirmDanger(title, text, label) {
  return ask(title, text, [{ label: "Cancel", value: "" }, { label, value: "yes", danger: true }]).then((v) => v === "yes");
}

// Placeholder rows of a fixed height while data loads, so nothing jumps when it arrives.
export function skeleton(lines = 3, cls = "sk-row") {
  return h("div.skeleton", { "aria-hidden": "true" }, Array.from({ length: lines }, () => h(`div.sk.${cls}`)));
}

export function section(title, ...children) {
  const id = "h-" + title.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return h("section.card", { "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

export function field(label, input, hint) {
  const id = input.id || "f-" + Math.random().toString(36).slice(2, 9);
  input.id = id;
  return h("div.field", null, h("label", { for: id }, label), input, hint ? h("small.hint", null, hint) : null);
}
