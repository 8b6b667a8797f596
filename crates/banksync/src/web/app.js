// banksync's page: talks to the JSON API with the session cookie; every write carries the CSRF token.
// While logged in it listens to /api/events and redraws only the tables an event concerns, so changes made
// elsewhere (webhooks, the schedule, scripts using the API) show up without polling.
"use strict";

let csrfToken = null;
let linkScriptUrl = null;
let events = null; // the EventSource while logged in

// Each table draws only the answer to its latest request: an older, slower answer must not overwrite a newer one
// when an event and a click ask for the same table at about the same time.
const latest = { items: 0, accounts: 0, transactions: 0 };
// The Items the page shows, to offer replacing one when its bank is linked again.
let shownItems = [];

const $ = (sel) => document.querySelector(sel);

function showMessage(text, isError) {
  const el = $("#message");
  el.textContent = text;
  el.className = isError ? "error" : "";
  el.hidden = !text;
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (csrfToken && method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error((data && data.error && data.error.message) || `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return data;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : text;
  if (cls) td.className = cls;
  return td;
}

function button(label, onClick) {
  const b = document.createElement("button");
  b.textContent = label;
  b.addEventListener("click", async () => {
    b.disabled = true;
    try { await onClick(); } catch (e) { showMessage(e.message, true); } finally { b.disabled = false; }
  });
  return b;
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "never");
const money = (amount, currency) => (amount == null ? "" : `${amount} ${currency || ""}`.trim());

function loadScript(src) {
  return new Promise((resolve, reject) => {
    if (window.Plaid) return resolve();
    const s = document.createElement("script");
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error("cannot load the Plaid Link script"));
    document.head.appendChild(s);
  });
}

// Opens Link; with itemId, in update mode to repair that Item's login.
async function openLink(itemId) {
  const token = await api("POST", "/api/link/token", itemId ? { item_id: itemId } : {});
  await loadScript(linkScriptUrl);
  const handler = window.Plaid.create({
    token: token.link_token,
    onSuccess: async (publicToken, metadata) => {
      try {
        if (itemId) {
          await api("POST", `/api/items/${encodeURIComponent(itemId)}/repaired`, {});
          showMessage("Bank reconnected.");
        } else {
          const body = { public_token: publicToken, metadata };
          Object.assign(body, sameBankChoice(metadata));
          const item = await api("POST", "/api/link/exchange", body);
          showMessage(item.replaces_item_id
            ? `Linked ${item.institution_name || "bank"} again; the old connection's history, notes and categories move over once transactions have synced.`
            : `Linked ${item.institution_name || "bank"}; transactions are syncing.`);
        }
        // The first sync runs in the background; its sync_finished event brings the transactions.
        await refresh();
      } catch (e) {
        showMessage(e.message, true);
      }
    },
    onExit: (err) => { if (err) showMessage(err.display_message || err.error_message || "Link closed.", true); },
  });
  handler.open();
}

// A bank the page already shows was linked again: replace that connection (its history, notes and categories are
// merged into the new one and it is removed), keep both (billed separately), or neither (the server refuses it and
// removes the new one at Plaid).
function sameBankChoice(metadata) {
  const institutionId = metadata && metadata.institution && metadata.institution.institution_id;
  const existing = institutionId && shownItems.find((i) => i.institution_id === institutionId);
  if (!existing) return {};
  const name = existing.institution_name || (metadata.institution.name) || "this bank";
  if (confirm(`Replace the existing connection to ${name}? Its history, notes and categories move to the new connection and the old one is removed.`)) {
    return { replaces_item_id: existing.item_id };
  }
  if (confirm(`Keep both connections to ${name}? Each is billed separately.`)) return { allow_duplicate: true };
  return {};
}

// banksync's last sync, when Plaid last heard from the bank, and where Plaid is with the Item's data.
function syncSummary(item) {
  const s = item.sync || {};
  const parts = [when(item.last_successful_sync_at)];
  if (s.institution_last_update) parts.push(`bank checked ${when(s.institution_last_update)}`);
  if (s.stalled_message) parts.push(s.stalled_message);
  else if (s.phase === "not_ready") parts.push("waiting for Plaid's first transactions…");
  else if (s.phase === "initial_update_complete") parts.push("recent transactions in; older history coming…");
  return parts.join(" · ");
}

async function renderItems() {
  const seq = ++latest.items;
  const { items } = await api("GET", "/api/items");
  if (seq !== latest.items) return;
  shownItems = items;
  const body = $("#items tbody");
  body.replaceChildren();
  for (const item of items) {
    const tr = document.createElement("tr");
    tr.appendChild(cell(item.institution_name || item.item_id));
    const h = item.health;
    tr.appendChild(cell(h.status === "good" ? "good" : `${h.status}: ${h.message || ""}`, h.status === "good" ? "health-good" : "health-bad"));
    tr.appendChild(cell(syncSummary(item)));
    const actions = document.createElement("td");
    actions.appendChild(button("Sync now", async () => {
      const s = await api("POST", `/api/items/${encodeURIComponent(item.item_id)}/sync`, {});
      // The tables follow from the sync_finished event every sync publishes.
      if (s.job_id) showMessage("The bank is taking a while; the sync goes on in the background.");
      else showMessage(s.not_ready ? "Plaid has no transactions for this bank yet; banksync keeps checking by itself." : `Synced: ${s.added} added, ${s.modified} modified, ${s.removed} removed.`);
    }));
    if (h.needs_reconnect) actions.appendChild(button("Reconnect", () => openLink(item.item_id)));
    actions.appendChild(button("Remove", async () => {
      if (!confirm("Remove this bank and its data?")) return;
      await api("DELETE", `/api/items/${encodeURIComponent(item.item_id)}`);
      await refresh();
    }));
    tr.appendChild(actions);
    body.appendChild(tr);
  }
  if (!items.length) body.innerHTML = '<tr><td colspan="4" class="muted">No bank linked yet.</td></tr>';
}

async function renderAccounts() {
  const seq = ++latest.accounts;
  const { accounts } = await api("GET", "/api/accounts");
  if (seq !== latest.accounts) return;
  const body = $("#accounts tbody");
  body.replaceChildren();
  for (const a of accounts) {
    const tr = document.createElement("tr");
    tr.appendChild(cell(`${a.name}${a.mask ? " ••" + a.mask : ""}`));
    tr.appendChild(cell(`${a.type}${a.subtype ? " / " + a.subtype : ""}`));
    tr.appendChild(cell(money(a.balances.available, a.balances.currency), "num"));
    tr.appendChild(cell(money(a.balances.current, a.balances.currency), "num"));
    tr.appendChild(cell(`${when(a.balances.as_of)} (${a.balances.source})`, "muted"));
    body.appendChild(tr);
  }
}

async function renderTransactions() {
  const q = $("#search").q.value.trim();
  const params = new URLSearchParams({ limit: "50" });
  if (q) params.set("q", q);
  const seq = ++latest.transactions;
  const { transactions } = await api("GET", `/api/transactions?${params}`);
  if (seq !== latest.transactions) return;
  const body = $("#transactions tbody");
  body.replaceChildren();
  for (const t of transactions) {
    const tr = document.createElement("tr");
    tr.dataset.transactionId = t.transaction_id;
    tr.appendChild(cell(t.date));
    tr.appendChild(cell(t.display_name + (t.pending ? " (pending)" : ""), t.pending ? "pending" : ""));
    tr.appendChild(cell(t.user_category || t.category || ""));
    tr.appendChild(cell(money(t.amount, t.currency), "num"));
    const note = document.createElement("td");
    note.appendChild(button(t.user_note ? `✎ ${t.user_note}` : "Add note", async () => {
      const text = prompt("Note (empty to clear)", t.user_note || "");
      if (text === null) return;
      await api("PATCH", `/api/transactions/${encodeURIComponent(t.transaction_id)}`, { note: text || null });
      await renderTransactions();
    }));
    tr.appendChild(note);
    body.appendChild(tr);
  }
}

async function refresh() {
  await Promise.all([renderItems(), renderAccounts(), renderTransactions()]);
}

function setLive(state) {
  const el = $("#live");
  el.hidden = !state;
  el.dataset.state = state || "";
  el.textContent = state === "live" ? "● live" : "○ offline";
  el.title = state === "live" ? "Changes appear as they happen." : "Not receiving live updates; reconnecting…";
}

function redraw(...renders) {
  return () => Promise.all(renders.map((r) => r())).catch((e) => showMessage(e.message, true));
}

// Subscribes to the user's events. EventSource reconnects by itself; after a gap the page redraws everything,
// since events sent meanwhile are lost.
function listen() {
  stopListening();
  const source = new EventSource("/api/events");
  events = source;
  let missed = false;
  source.onopen = () => {
    setLive("live");
    if (missed) redraw(refresh)();
    missed = false;
  };
  source.onerror = () => {
    missed = true;
    setLive("offline");
  };
  source.addEventListener("sync_finished", (ev) => {
    const data = JSON.parse(ev.data);
    // A failed sync changed nothing but the Item; a successful one also refreshed the cached balances.
    if (data.error) redraw(renderItems)(); else redraw(renderItems, renderAccounts, renderTransactions)();
  });
  source.addEventListener("balances_updated", redraw(renderAccounts));
  source.addEventListener("item_health_changed", redraw(renderItems));
  source.addEventListener("lagged", redraw(refresh));
}

function stopListening() {
  if (events) events.close();
  events = null;
  setLive(null);
}

function showApp(session) {
  csrfToken = session.csrf_token;
  $("#who").textContent = session.user.username;
  $("#login-section").hidden = true;
  $("#app-section").hidden = false;
  $("#logout").hidden = false;
  listen();
  refresh().catch((e) => showMessage(e.message, true));
}

function showLogin() {
  stopListening();
  csrfToken = null;
  $("#who").textContent = "";
  $("#login-section").hidden = false;
  $("#app-section").hidden = true;
  $("#logout").hidden = true;
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  try {
    showApp(await api("POST", "/api/session", { username: f.username.value, password: f.password.value }));
    f.password.value = "";
    showMessage("");
  } catch (e) {
    showMessage(e.message, true);
  }
});

$("#logout").addEventListener("click", async () => {
  await api("DELETE", "/api/session").catch(() => {});
  showLogin();
});

$("#link-bank").addEventListener("click", () => openLink(null).catch((e) => showMessage(e.message, true)));

$("#refresh-balances").addEventListener("click", async () => {
  try {
    const { job_id } = await api("POST", "/api/balances/refresh", {});
    showMessage("Asking your banks for live balances…");
    // The tables follow from balances_updated / item_health_changed events; the job says which Items failed and why.
    let job;
    do {
      job = await api("GET", `/api/balances/refresh/${encodeURIComponent(job_id)}?wait=20`);
    } while (job.state !== "done");
    const failed = job.items.filter((i) => i.state === "error");
    showMessage(failed.length ? failed.map((i) => i.error.message).join(" ") : "Balances are up to date.", failed.length > 0);
  } catch (e) {
    showMessage(e.message, true);
  }
});

$("#search").addEventListener("submit", (ev) => { ev.preventDefault(); renderTransactions().catch((e) => showMessage(e.message, true)); });

(async () => {
  const config = await api("GET", "/api/config");
  linkScriptUrl = config.link_script_url;
  $("#mode").textContent = config.plaid_mode === "simulator" ? "Plaid simulator (log in to banks as user_good / pass_good)" : "";
  try {
    showApp(await api("GET", "/api/session"));
  } catch (e) {
    if (e.status === 401) showLogin(); else showMessage(e.message, true);
  }
})();
