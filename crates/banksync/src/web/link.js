// Plaid Link: a new bank, or update mode to repair an Item's login, and the OAuth resume. Before opening Link the
// page saves the link token and the mode in sessionStorage: an OAuth bank takes the whole window away and sends
// it back to /oauth-return?oauth_state_id=…, where Link is created again with the saved token and
// receivedRedirectUri (contracts.md, "OAuth").
import { get, post, enc } from "./api.js";
import { ask, say, fail } from "./ui.js";

const TOKEN_KEY = "banksync.link_token";
const MODE_KEY = "banksync.link_mode";

function loadScript(src) {
  return new Promise((resolve, reject) => {
    if (window.Plaid) return resolve();
    const s = document.createElement("script");
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error("Cannot load Plaid Link."));
    document.head.appendChild(s);
  });
}

// A bank the user already has was linked again: replace that connection (history, notes and categories move to
// the new one), keep both (billed separately), or neither (the server refuses the new one).
async function sameBankChoice(metadata) {
  const institutionId = metadata && metadata.institution && metadata.institution.institution_id;
  if (!institutionId) return {};
  const { items } = await get("/api/items");
  const existing = items.find((i) => i.institution_id === institutionId);
  if (!existing) return {};
  const name = existing.institution_name || metadata.institution.name || "this bank";
  const choice = await ask(`${name} is already linked`, [
    `Replace the existing connection? Its history, notes and categories move to the new one and the old one is removed.`,
    "Or keep both connections (each is billed separately).",
  ], [{ label: "Cancel", value: "" }, { label: "Keep both", value: "both" }, { label: "Replace", value: "replace", primary: true }]);
  if (choice === "replace") return { replaces_item_id: existing.item_id };
  if (choice === "both") return { allow_duplicate: true };
  return {};
}

async function finish(mode, publicToken, metadata, onDone) {
  try {
    if (mode.item_id) {
      await post(`/api/items/${enc(mode.item_id)}/repaired`, {});
      say("Bank reconnected.", "ok");
    } else {
      const body = { public_token: publicToken, metadata, ...(await sameBankChoice(metadata)) };
      const item = await post("/api/link/exchange", body);
      say(item.replaces_item_id
        ? `Linked ${item.institution_name || "bank"} again; the old connection's history, notes and categories move over once transactions have synced.`
        : `Linked ${item.institution_name || "bank"}; transactions are syncing.`, "ok");
    }
  } catch (e) {
    fail(e);
  } finally {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(MODE_KEY);
    if (onDone) await onDone();
  }
}

function create(app, token, mode, extra, onDone) {
  return window.Plaid.create({
    token,
    ...extra,
    onSuccess: (publicToken, metadata) => finish(mode, publicToken, metadata, onDone),
    onExit: (err) => {
      sessionStorage.removeItem(TOKEN_KEY);
      sessionStorage.removeItem(MODE_KEY);
      if (err) say(err.display_message || err.error_message || "Link closed.", "error");
      if (onDone && extra.receivedRedirectUri) onDone();
    },
  });
}

// Opens Link; with itemId, in update mode to repair that Item's login. onDone runs after a success.
export async function openLink(app, itemId, onDone) {
  const token = await post("/api/link/token", itemId ? { item_id: itemId } : {});
  const mode = itemId ? { item_id: itemId } : { new: true };
  sessionStorage.setItem(TOKEN_KEY, token.link_token);
  sessionStorage.setItem(MODE_KEY, JSON.stringify(mode));
  await loadScript(app.config.link_script_url);
  create(app, token.link_token, mode, {}, onDone).open();
}

export async function resumeOAuth(app) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) throw new Error("This link with your bank was started in another tab or has expired; start again from Banks.");
  let mode = { new: true };
  try { mode = JSON.parse(sessionStorage.getItem(MODE_KEY)) || mode; } catch { /* a new link */ }
  await loadScript(app.config.link_script_url);
  const back = () => app.navigate(mode.item_id ? "/banks" : "/", { replace: true });
  create(app, token, mode, { receivedRedirectUri: window.location.href }, back).open();
}
