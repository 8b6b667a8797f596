// Transactions: the whole history, newest first, with filters that live in the URL (so the spending charts can
// link a drill-down here and a reload keeps them), keyset paging through `next_cursor` ("Load more", and
// infinite scroll while the button is on screen), inline editing of note and category (no prompt()), and a
// detail panel per transaction. A table on wide screens, a list on phones (style.css).
import { get, patch, enc } from "./api.js";
import { h, $, section, skeleton, fail, say, field } from "./ui.js";
import { PRIMARY_CATEGORIES, categoryName, detailedName, categoryIcon, flow, day, when, avatar, accountLabel, effectiveCategory } from "./format.js";

const FILTERS = ["account_id", "start", "end", "category", "effective_category", "detailed_category", "pending", "min_amount", "max_amount", "q"];
const PAGE = 50;

export async function mount(root, app) {
  const params = new URLSearchParams(location.search);
  const { accounts } = await get("/api/accounts");
  const accountById = new Map(accounts.map((a) => [a.account_id, a]));
  const userCategories = new Set();
  const detailedSeen = new Set();
  let cursor = null;
  let seq = 0;
  let loading = false;

  // The category select: Plaid's primaries, the detailed ones met so far, the user's own.
  const categorySelect = h("select", { name: "category_choice" });
  function fillCategories() {
    const chosen = currentCategoryValue();
    categorySelect.replaceChildren(h("option", { value: "" }, "All categories"),
      h("optgroup", { label: "Categories" }, PRIMARY_CATEGORIES.map((c) => h("option", { value: "effective_category:" + c }, categoryName(c)))),
      detailedSeen.size ? h("optgroup", { label: "Detailed" }, [...detailedSeen].sort().map((d) => {
        const p = PRIMARY_CATEGORIES.find((c) => d.startsWith(c + "_"));
        return h("option", { value: "detailed_category:" + d }, `${categoryName(p || "")} › ${detailedName(d, p)}`);
      })) : null,
      userCategories.size ? h("optgroup", { label: "Your categories" }, [...userCategories].sort().map((c) => h("option", { value: "effective_category:" + c }, c))) : null);
    if (chosen && ![...categorySelect.options].some((o) => o.value === chosen)) {
      const [, v] = chosen.split(":");
      categorySelect.append(h("option", { value: chosen }, categoryName(v)));
    }
    categorySelect.value = chosen;
  }
  function currentCategoryValue() {
    for (const k of ["effective_category", "detailed_category", "category"]) {
      if (params.get(k)) return `${k === "category" ? "effective_category" : k}:${params.get(k)}`;
    }
    return "";
  }

  const input = (name, attrs) => h("input", { name, value: params.get(name) || "", ...attrs });
  // Amounts as the user sees them (money in positive); the API keeps Plaid's sign, so the range flips.
  const userMin = params.get("max_amount") ? String(-Number(params.get("max_amount"))) : "";
  const userMax = params.get("min_amount") ? String(-Number(params.get("min_amount"))) : "";
  const form = h("form.filters", { role: "search", "aria-label": "Filter transactions" },
    field("Search", input("q", { type: "search", placeholder: "Name, merchant or note", autocomplete: "off" })),
    field("Account", h("select", { name: "account_id" }, h("option", { value: "" }, "All accounts"),
      accounts.map((a) => h("option", { value: a.account_id, selected: params.get("account_id") === a.account_id }, accountLabel(a))))),
    field("From", input("start", { type: "date" })),
    field("To", input("end", { type: "date" })),
    field("Category", categorySelect),
    field("Status", h("select", { name: "pending" }, h("option", { value: "" }, "Any"),
      h("option", { value: "true", selected: params.get("pending") === "true" }, "Pending"),
      h("option", { value: "false", selected: params.get("pending") === "false" }, "Posted"))),
    field("Amount from", h("input", { name: "amount_from", type: "number", step: "0.01", value: userMin, inputmode: "decimal" })),
    field("Amount to", h("input", { name: "amount_to", type: "number", step: "0.01", value: userMax, inputmode: "decimal" })),
    h("div.filter-actions", null, h("button.primary", { type: "submit" }, "Apply"),
      h("button", { type: "button", id: "clear-filters", onclick: () => { app.navigate("/transactions"); } }, "Clear")));
  fillCategories();

  const tbody = h("tbody");
  const table = h("table.tx-table#transactions", null,
    h("caption.visually-hidden", null, "Transactions, newest first"),
    h("thead", null, h("tr", null, h("th", { scope: "col" }, h("span.visually-hidden", null, "Logo")), h("th", { scope: "col" }, "Date"),
      h("th", { scope: "col" }, "Description"), h("th", { scope: "col" }, "Category"), h("th", { scope: "col", class: "num" }, "Amount"),
      h("th", { scope: "col" }, "Note"))), tbody);
  const count = h("p.muted#tx-count", { role: "status", "aria-live": "polite" });
  const more = h("button#load-more", { type: "button", hidden: true }, "Load more");
  const placeholder = skeleton(8);

  root.append(h("div.page-head", null, h("h1", null, "Transactions")), form,
    h("div.card.table-card", null, table, placeholder, h("div.more", null, more, count)));

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const next = new URLSearchParams();
    for (const name of ["q", "account_id", "start", "end", "pending"]) {
      const v = form.elements[name].value.trim();
      if (v) next.set(name, v);
    }
    const cat = categorySelect.value;
    if (cat) { const i = cat.indexOf(":"); next.set(cat.slice(0, i), cat.slice(i + 1)); }
    const from = form.amount_from.value.trim(), to = form.amount_to.value.trim();
    if (to) next.set("min_amount", String(-Number(to)));
    if (from) next.set("max_amount", String(-Number(from)));
    app.navigate("/transactions" + (next.toString() ? "?" + next : ""));
  });

  function query(after) {
    const q = new URLSearchParams({ limit: String(PAGE) });
    for (const k of FILTERS) if (params.get(k)) q.set(k, params.get(k));
    if (after) q.set("cursor", after);
    return q;
  }

  async function load(reset) {
    if (loading && !reset) return;
    const s = ++seq;
    loading = true;
    more.disabled = true;
    try {
      const page = await get(`/api/transactions?${query(reset ? null : cursor)}`);
      if (s !== seq) return;
      placeholder.remove();
      if (reset) tbody.replaceChildren();
      for (const t of page.transactions) {
        if (t.user_category) userCategories.add(t.user_category);
        if (t.category_detailed) detailedSeen.add(t.category_detailed);
        tbody.append(row(t));
      }
      cursor = page.next_cursor;
      more.hidden = !cursor;
      const shown = tbody.querySelectorAll("tr.tx").length;
      count.textContent = shown ? `${shown} transaction${shown === 1 ? "" : "s"} shown${cursor ? "" : " (all)"}` : "No transactions match.";
      fillCategories();
    } finally {
      if (s === seq) { loading = false; more.disabled = false; }
    }
  }

  function row(t) {
    const account = accountById.get(t.account_id);
    const currency = t.currency || (account && account.balances.currency);
    const tr = h("tr.tx", { dataset: { transactionId: t.transaction_id }, class: t.pending ? "tx pending" : "tx" });
    const detailsButton = h("button.link", { type: "button", "aria-expanded": "false", "aria-label": `Details of ${t.display_name} on ${day(t.date)}` }, t.display_name);
    detailsButton.addEventListener("click", () => toggleDetails(tr, t, detailsButton));
    tr.append(
      h("td.logo", null, avatar(t)),
      h("td.date", null, h("time", { datetime: t.date }, day(t.date))),
      h("td.desc", null, detailsButton, h("div.muted.small", null, account ? accountLabel(account) : "", t.pending ? " · pending" : "")),
      h("td.cat", null, categoryEditor(t)),
      h("td.num.amt", null, flow(t.amount, currency)),
      h("td.note", null, noteEditor(t)));
    return tr;
  }

  function categoryLabel(t) {
    const eff = effectiveCategory(t);
    const detail = !t.user_category && t.category_detailed ? detailedName(t.category_detailed, t.category) : "";
    return [categoryIcon(eff), h("span.cat-name", null, categoryName(eff)), detail ? h("span.muted.small", null, ` · ${detail}`) : null];
  }

  function categoryEditor(t) {
    const box = h("div.inline-edit");
    const show = () => {
      box.replaceChildren(h("button.chip", { type: "button", "aria-label": `Category: ${categoryName(effectiveCategory(t))}. Change`, onclick: edit }, categoryLabel(t)));
    };
    const edit = () => {
      const select = h("select", { "aria-label": "Category" },
        h("option", { value: "" }, `Plaid's: ${categoryName(t.category || "UNCATEGORIZED")}`),
        h("optgroup", { label: "Categories" }, PRIMARY_CATEGORIES.map((c) => h("option", { value: c }, categoryName(c)))),
        userCategories.size ? h("optgroup", { label: "Your categories" }, [...userCategories].sort().map((c) => h("option", { value: c }, c))) : null,
        h("option", { value: "__new" }, "New category…"));
      select.value = t.user_category || "";
      const custom = h("input", { "aria-label": "New category name", maxlength: "100", hidden: true });
      select.addEventListener("change", () => { custom.hidden = select.value !== "__new"; if (!custom.hidden) custom.focus(); });
      const save = async () => {
        const value = select.value === "__new" ? custom.value.trim() : select.value;
        const updated = await patch(`/api/transactions/${enc(t.transaction_id)}`, { category: value || null });
        Object.assign(t, updated);
        if (t.user_category) userCategories.add(t.user_category);
        show();
        box.querySelector("button").focus();
        say(`Category set to ${categoryName(effectiveCategory(t))}.`, "ok");
      };
      const form = h("form.edit-form", null, select, custom, h("button.primary.small", { type: "submit" }, "Save"),
        h("button.small", { type: "button", onclick: () => { show(); box.querySelector("button").focus(); } }, "Cancel"));
      form.addEventListener("submit", (ev) => { ev.preventDefault(); save().catch(fail); });
      form.addEventListener("keydown", (ev) => { if (ev.key === "Escape") { ev.preventDefault(); show(); box.querySelector("button").focus(); } });
      box.replaceChildren(form);
      select.focus();
    };
    show();
    return box;
  }

  function noteEditor(t) {
    const box = h("div.inline-edit");
    const show = () => box.replaceChildren(h("button.note-button", { type: "button", class: t.user_note ? "note-button has-note" : "note-button",
      "aria-label": t.user_note ? `Note: ${t.user_note}. Edit` : `Add a note to ${t.display_name}`, onclick: edit }, t.user_note || "Add note"));
    const edit = () => {
      const text = h("input", { value: t.user_note || "", "aria-label": "Note", maxlength: "2000", name: "note" });
      const form = h("form.edit-form", null, text, h("button.primary.small", { type: "submit" }, "Save"),
        h("button.small", { type: "button", onclick: () => { show(); box.querySelector("button").focus(); } }, "Cancel"));
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        try {
          const updated = await patch(`/api/transactions/${enc(t.transaction_id)}`, { note: text.value.trim() || null });
          Object.assign(t, updated);
          show();
          box.querySelector("button").focus();
          say("Note saved.", "ok");
        } catch (e) { fail(e); }
      });
      form.addEventListener("keydown", (ev) => { if (ev.key === "Escape") { ev.preventDefault(); show(); box.querySelector("button").focus(); } });
      box.replaceChildren(form);
      text.focus();
    };
    show();
    return box;
  }

  async function toggleDetails(tr, t, button) {
    const next = tr.nextElementSibling;
    if (next && next.classList.contains("tx-details")) {
      next.remove();
      button.setAttribute("aria-expanded", "false");
      return;
    }
    button.setAttribute("aria-expanded", "true");
    // The raw object has its own route (the list stays lean); without it the panel still shows what it has.
    const [full, raw] = await Promise.all([
      get(`/api/transactions/${enc(t.transaction_id)}`).catch(() => t),
      get(`/api/transactions/${enc(t.transaction_id)}/raw`).catch(() => null),
    ]);
    if (button.getAttribute("aria-expanded") !== "true" || tr.nextElementSibling?.classList.contains("tx-details")) return;
    const loc = full.location || {};
    const place = [loc.address, loc.city, loc.region, loc.postal_code, loc.country].filter(Boolean).join(", ");
    const parties = (full.counterparties || []).map((c) => `${c.name}${c.type ? ` (${c.type.replace(/_/g, " ")})` : ""}`).join(", ");
    const dl = h("dl.details", null,
      h("dt", null, "Counterparties"), h("dd", null, parties || "—"),
      h("dt", null, "Location"), h("dd", null, place || "—"),
      h("dt", null, "Payment channel"), h("dd", null, full.payment_channel ? categoryName(full.payment_channel.toUpperCase()) : "—"),
      h("dt", null, "Authorized"), h("dd", null, full.authorized_date ? day(full.authorized_date) : "—"),
      h("dt", null, "Posted"), h("dd", null, full.pending ? "Pending" : day(full.date)),
      h("dt", null, "Plaid category"), h("dd", null, full.category ? `${categoryName(full.category)}${full.category_detailed ? " › " + detailedName(full.category_detailed, full.category) : ""}` : "—"),
      h("dt", null, "Website"), h("dd", null, full.website || "—"),
      h("dt", null, "Updated"), h("dd", null, when(full.updated_at)));
    const details = h("tr.tx-details", null, h("td", { colspan: "6" }, h("div.details-panel", { role: "region", "aria-label": `Details of ${t.display_name}` }, dl,
      raw ? h("details.raw-json", null, h("summary", null, "Raw Plaid data (JSON)"),
        h("pre.raw", { tabindex: "0", "aria-label": "Plaid's transaction object" }, JSON.stringify(raw, null, 2)))
        : h("p.muted.small", null, "Plaid's raw data could not be loaded."))));
    tr.after(details);
  }

  more.addEventListener("click", () => load(false).catch(fail));
  // Infinite scroll: the "Load more" button loads itself when it scrolls into view.
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && !more.hidden && !loading) load(false).catch(fail);
  }, { rootMargin: "200px" });
  observer.observe(more);

  await load(true);

  return {
    unmount() { observer.disconnect(); },
    async onEvent(name, data) {
      // New or changed transactions: reload the first page (the user's place in a deep list is kept otherwise).
      if (name === "sync_finished" && !data.error && !cursorDeep()) await load(true);
      if (name === "lagged") await load(true);
    },
  };

  function cursorDeep() { return tbody.querySelectorAll("tr.tx").length > PAGE; }
}
