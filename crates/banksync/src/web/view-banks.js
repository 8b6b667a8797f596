// Banks: each Item's health with its fix (Reconnect opens Link in update mode), when Plaid last heard from the
// bank vs banksync's last sync, where Plaid is with the Item's data, its sync history with Plaid's request ids and
// errors, "sync now" and remove (behind an accessible confirmation dialog).
import { get, post, del, enc } from "./api.js";
import { h, section, skeleton, action, say, fail, confirmDanger } from "./ui.js";
import { when, ago } from "./format.js";
import { openLink } from "./link.js";

function phase(item) {
  const s = item.sync || {};
  if (s.stalled_message) return s.stalled_message;
  if (s.phase === "not_ready") return "Waiting for Plaid's first transactions…";
  if (s.phase === "initial_update_complete") return "Recent transactions in; older history coming…";
  if (s.phase === "historical_update_complete") return "Full history in.";
  return "";
}

export async function mount(root, app) {
  const list = h("div#items", { "aria-busy": "true" }, skeleton(3, "sk-card"));
  root.append(h("div.page-head", null, h("h1", null, "Banks"),
    h("div.actions", null, action("Link a bank", () => openLink(app, null, draw), { class: "primary", id: "link-bank" }))), list);
  const open = new Set(); // Items whose history is shown
  let seq = 0;

  async function draw() {
    const s = ++seq;
    const { items } = await get("/api/items");
    if (s !== seq) return;
    list.removeAttribute("aria-busy");
    if (!items.length) {
      list.replaceChildren(h("p.card.muted", null, "No bank linked yet."));
      return;
    }
    list.replaceChildren(...items.map(card));
    for (const id of open) showHistory(id).catch(fail);
  }

  function card(item) {
    const health = item.health;
    const good = health.status === "good";
    const history = h("div.history", { id: `history-${item.item_id}` });
    const historyButton = h("button", { type: "button", "aria-expanded": String(open.has(item.item_id)), "aria-controls": `history-${item.item_id}` }, "Sync history");
    historyButton.addEventListener("click", async () => {
      if (open.has(item.item_id)) {
        open.delete(item.item_id);
        history.replaceChildren();
        historyButton.setAttribute("aria-expanded", "false");
      } else {
        open.add(item.item_id);
        historyButton.setAttribute("aria-expanded", "true");
        await showHistory(item.item_id).catch(fail);
      }
    });
    const s = item.sync || {};
    const name = item.institution_name || item.item_id;
    return h("article.card.bank", { dataset: { itemId: item.item_id }, "aria-label": name },
      h("div.bank-head", null, h("h2", null, name),
        h("span", { class: `badge ${good ? "good" : "bad"}` }, good ? "Connected" : health.status.replace(/_/g, " "))),
      good ? null : h("p.health-message", null, health.message || health.display_message || ""),
      h("dl.facts", null,
        h("dt", null, "Last sync"), h("dd", null, item.last_successful_sync_at ? `${ago(item.last_successful_sync_at)} (${when(item.last_successful_sync_at)})` : "never"),
        h("dt", null, "Bank last updated"), h("dd", null, s.institution_last_update ? `${ago(s.institution_last_update)} (${when(s.institution_last_update)})` : "unknown"),
        phase(item) ? [h("dt", null, "Status"), h("dd", null, phase(item))] : null),
      h("div.actions", null,
        health.needs_reconnect ? action("Reconnect", () => openLink(app, item.item_id, draw), { class: "primary" }) : null,
        action("Sync now", async () => {
          const r = await post(`/api/items/${enc(item.item_id)}/sync`, {});
          if (r.job_id) say("The bank is taking a while; the sync goes on in the background.");
          else say(r.not_ready ? "Plaid has no transactions for this bank yet; banksync keeps checking by itself."
            : `Synced ${name}: ${r.added} added, ${r.modified} modified, ${r.removed} removed.`, "ok");
        }),
        historyButton,
        action("Remove", async () => {
          if (!await confirmDanger(`Remove ${name}?`, "Its accounts, transactions, notes and categories are deleted from banksync and the connection is closed at Plaid.", "Remove bank")) return;
          await del(`/api/items/${enc(item.item_id)}`);
          say(`${name} removed.`, "ok");
          await draw();
        }, { class: "danger" })),
      history);
  }

  async function showHistory(itemId) {
    const box = document.getElementById(`history-${itemId}`);
    if (!box) return;
    if (!box.childElementCount) box.append(skeleton(3));
    const { runs, calls } = await get(`/api/items/${enc(itemId)}/history?limit=20`);
    box.replaceChildren(
      h("h3", null, "Syncs"),
      runs.length ? h("div.table-scroll", { tabindex: "0", role: "region", "aria-label": "Scrollable table" }, h("table.history-table", null,
        h("thead", null, h("tr", null, ["Started", "Trigger", "Outcome", "Added", "Modified", "Removed", "Error"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", null, runs.map((r) => h("tr", null, h("td", null, when(r.started_at)), h("td", null, r.trigger),
          h("td", { class: r.outcome === "ok" || r.outcome === "success" ? "ok" : "" }, r.outcome || "running"),
          h("td.num", null, r.added), h("td.num", null, r.modified), h("td.num", null, r.removed),
          h("td", null, r.error_code ? `${r.error_code}${r.error_message ? ": " + r.error_message : ""}` : "")))))) : h("p.muted", null, "No syncs yet."),
      h("h3", null, "Calls to Plaid"),
      calls.length ? h("div.table-scroll", { tabindex: "0", role: "region", "aria-label": "Scrollable table" }, h("table.history-table", null,
        h("thead", null, h("tr", null, ["At", "Endpoint", "Status", "Request id", "Error", "Time"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", null, calls.map((c) => h("tr", null, h("td", null, when(c.at)), h("td", null, h("code", null, c.endpoint)),
          h("td", null, String(c.status)), h("td", null, h("code.request-id", null, c.request_id || "")),
          h("td", null, c.error_code ? `${c.error_code}${c.error_message ? ": " + c.error_message : ""}` : ""),
          h("td.num", null, c.duration_ms != null ? `${c.duration_ms} ms` : "")))))) : h("p.muted", null, "No calls yet."));
  }

  await draw();
  return {
    async onEvent() { await draw(); },
  };
}
