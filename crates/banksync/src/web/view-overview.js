// Overview (`/`): net worth per currency, balances by account type, what changed since the last visit, banks that
// need attention with their fix one click away, and the accounts with a live balance refresh that shows cached
// values at once and each account's live balance as its bank answers (the page never waits on the slowest bank).
import { get, post, enc } from "./api.js";
import { h, section, skeleton, action, say, fail } from "./ui.js";
import { money, when, ago, categoryName, accountLabel } from "./format.js";
import { openLink } from "./link.js";

const TYPE_NAMES = { depository: "Cash", credit: "Credit cards", loan: "Loans", investment: "Investments", other: "Other" };

export async function mount(root, app) {
  const top = h("div.overview-top", null, skeleton(2, "sk-card"));
  const attention = h("div#attention");
  const accountsBody = h("div#accounts", { "aria-busy": "true" }, skeleton(4));
  const refreshStatus = h("p.muted#refresh-status", { role: "status", "aria-live": "polite" });
  const refreshing = new Map(); // item_id → "pending" | "ok" | "error"
  let seq = 0;

  root.append(
    h("div.page-head", null, h("h1", null, "Overview"),
      h("div.actions", null, action("Link a bank", () => openLink(app, null, load), { class: "primary", id: "link-bank" }))),
    top, attention,
    section("Accounts",
      h("div.section-tools", null, action("Refresh balances", refresh, { id: "refresh-balances" }), refreshStatus),
      accountsBody));

  async function loadOverview() {
    const s = ++seq;
    const o = await get("/api/overview");
    if (s !== seq) return;
    drawOverview(o);
    post("/api/overview/seen", {}).catch(() => {});
  }

  function drawOverview(o) {
    const cards = o.net_worth.map((n) => h("div.stat", { dataset: { currency: n.currency } },
      h("div.stat-label", null, `Net worth (${n.currency})`),
      h("div.stat-value", null, money(n.net, n.currency)),
      h("div.stat-sub", null, `Assets ${money(n.assets, n.currency)} · Liabilities ${money(n.liabilities, n.currency)}`)));
    const byType = o.by_type.length
      ? h("ul.by-type", null, o.by_type.map((t) => h("li", null,
        h("span", null, `${TYPE_NAMES[t.type] || categoryName(t.type)} (${t.accounts})`),
        h("strong", null, money(t.total, t.currency)))))
      : null;
    const c = o.changes || {};
    const since = o.since
      ? h("div.stat", null, h("div.stat-label", null, `Since your last visit (${ago(o.since)})`),
        h("div.stat-value", null, `${c.new_transactions || 0} new`),
        h("div.stat-sub", null, h("a", { href: "/transactions" }, "transactions"), ` · ${c.items_synced || 0} bank syncs`))
      : h("div.stat", null, h("div.stat-label", null, "Welcome"), h("div.stat-sub", null, "Changes since your last visit show here."));
    top.replaceChildren(h("div.stats", null, cards.length ? cards : h("div.stat", null,
      h("div.stat-label", null, "Net worth"), h("div.stat-sub", null, "Link a bank to see your balances.")), since),
    byType ? section("By account type", byType) : "");
    attention.replaceChildren(...(o.needs_attention.length ? [section("Needs attention", h("ul.attention", null,
      o.needs_attention.map((n) => h("li", null,
        h("div", null, h("strong", null, n.institution_name || "A bank"), h("span.badge.bad", null, n.health),
          h("div.muted", null, n.message || "")),
        n.fix === "reconnect" ? action("Reconnect", () => openLink(app, n.item_id, load), { class: "primary" })
          : n.fix === "sync" ? action("Sync now", () => syncNow(n.item_id))
          : h("span.muted", null, "Waiting for the bank; nothing to do.")))))] : []));
  }

  async function syncNow(itemId) {
    const s = await post(`/api/items/${enc(itemId)}/sync`, {});
    say(s.job_id ? "The bank is taking a while; the sync goes on in the background." : "Synced.", "ok");
  }

  async function loadAccounts() {
    const { accounts } = await get("/api/accounts");
    accountsBody.removeAttribute("aria-busy");
    if (!accounts.length) {
      accountsBody.replaceChildren(h("p.muted", null, "No accounts yet. Link a bank to begin."));
      return;
    }
    accountsBody.replaceChildren(h("ul.list.accounts-list", null, accounts.map((a) => {
      const b = a.balances;
      const state = refreshing.get(a.item_id);
      return h("li.row", { dataset: { accountId: a.account_id, itemId: a.item_id, source: b.source } },
        h("div.row-main", null, h("div.row-title", null, accountLabel(a)),
          h("div.muted", null, `${TYPE_NAMES[a.type] || categoryName((a.type || "").toUpperCase())}${a.subtype ? " · " + a.subtype : ""}`)),
        h("div.row-end", null,
          h("div.balance", null, money(b.current, b.currency)),
          h("div.muted.small", null, b.available != null ? `Available ${money(b.available, b.currency)}` : ""),
          h("div.asof", { class: `asof ${b.source}` },
            state === "pending" ? h("span.spinner", null, "Asking the bank…")
              : `${b.source === "live" ? "Live" : "Cached"} · as of ${when(b.as_of)}`)));
    })));
  }

  async function refresh() {
    // Mark the banks as being asked *before* asking: a fast bank's `balances_updated` event can arrive before the
    // POST answers, and it must clear a mark that is already there, not be overwritten by it.
    const { items } = await get("/api/items");
    for (const i of items) refreshing.set(i.item_id, "pending");
    refreshStatus.textContent = "Asking your banks for live balances…";
    let job_id;
    try {
      ({ job_id } = await post("/api/balances/refresh", {}));
    } catch (e) {
      refreshing.clear();
      refreshStatus.textContent = "";
      throw e;
    }
    await loadAccounts();
    // Long-poll in the background: the button is free again at once and each bank's answer arrives by event (the
    // poll also redraws any bank it finds answered, in case its event was missed).
    (async () => {
      let job;
      do {
        job = await get(`/api/balances/refresh/${enc(job_id)}?wait=20`);
        let answered = false;
        for (const i of job.items) {
          if (i.state !== "pending" && refreshing.get(i.item_id) === "pending") {
            refreshing.set(i.item_id, i.state);
            answered = true;
          }
        }
        if (answered && job.state !== "done") await loadAccounts();
      } while (job.state !== "done");
      const failed = job.items.filter((i) => i.state === "error");
      refreshing.clear();
      await loadAccounts();
      refreshStatus.textContent = failed.length
        ? failed.map((i) => `${i.institution_name || "A bank"}: ${i.error ? i.error.message : "failed"}`).join(" ")
        : "Balances are up to date.";
    })().catch(fail);
  }

  async function load() {
    await Promise.all([loadOverview().catch(fail), loadAccounts()]);
  }
  await load();

  return {
    async onEvent(name, data) {
      if (name === "balances_updated") {
        if (data.item_id) refreshing.delete(data.item_id);
        await loadAccounts();
        await loadOverview();
      } else {
        await load();
      }
    },
  };
}
