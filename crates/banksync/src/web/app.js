// banksync's web app: boots (public config, first-run setup, session), routes over real paths (no hash URLs, so
// a reload or a bookmark works; crate::http::web serves the page on each), and keeps one EventSource on
// /api/events while logged in, handing each event to the current view so changes made elsewhere (webhooks, the
// schedule, scripts using the API) show up without polling.
import { api, get, setCsrf } from "./api.js";
import { $, $$, fail, say } from "./ui.js";

const VIEWS = {
  "/": () => import("./view-overview.js"),
  "/transactions": () => import("./view-transactions.js"),
  "/spending": () => import("./view-spending.js"),
  "/banks": () => import("./view-banks.js"),
  "/settings": () => import("./view-settings.js"),
};
const PUBLIC = new Set(["/login", "/setup"]);
const TITLES = { "/": "Overview", "/transactions": "Transactions", "/spending": "Spending", "/banks": "Banks",
  "/settings": "Settings", "/login": "Log in", "/setup": "Set up banksync", "/oauth-return": "Linking your bank" };

export const app = { config: null, session: null, current: null, events: null, navigate, refreshSession: boot };

let routeSeq = 0;
// Events that arrive while a view is mounting (it has asked for its data but not drawn it yet) are kept here and
// handed to the view once it is mounted: dropping them would leave the view showing data fetched before the
// change (a sync that finished while the transactions request was in flight). null while no view is mounting.
let pending = null;
const MAX_PENDING = 20;

export async function navigate(path, { replace = false } = {}) {
  const url = new URL(path, location.origin);
  if (url.pathname + url.search !== location.pathname + location.search) {
    history[replace ? "replaceState" : "pushState"](null, "", url.pathname + url.search);
  }
  await route();
}

async function route() {
  const seq = ++routeSeq;
  const path = location.pathname;
  if (app.current && app.current.unmount) app.current.unmount();
  app.current = null;
  pending = [];
  const root = $("#view");
  root.dataset.ready = "false";
  if (!app.session && !PUBLIC.has(path)) {
    return navigate("/login?next=" + encodeURIComponent(path + location.search), { replace: true });
  }
  document.title = `${TITLES[path] || "banksync"} · banksync`;
  for (const a of $$("#nav a")) {
    if (a.getAttribute("href") === path) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  let view;
  if (PUBLIC.has(path) || path === "/oauth-return") {
    const auth = await import("./view-auth.js");
    view = path === "/setup" ? auth.setup : path === "/login" ? auth.login : auth.oauthReturn;
  } else {
    const load = VIEWS[path];
    if (!load) {
      pending = null;
      root.replaceChildren();
      root.append(Object.assign(document.createElement("h1"), { textContent: "Page not found" }));
      return;
    }
    view = await load();
  }
  if (seq !== routeSeq) return;
  // Each view draws into its own container: a slower, older view that is still loading writes into a detached one.
  const container = document.createElement("div");
  container.className = "view-body";
  root.replaceChildren(container);
  root.dataset.view = path.slice(1) || "overview";
  let mounted = null;
  try {
    mounted = (await view.mount(container, app)) || {};
  } catch (e) {
    fail(e);
  }
  if (seq !== routeSeq) {
    if (mounted && mounted.unmount) mounted.unmount();
    return;
  }
  app.current = mounted;
  const missed = pending;
  pending = null;
  for (const [name, data] of missed) dispatch(name, data);
  // Tests (and nothing else) wait for this: the view drew its first data.
  root.dataset.ready = "true";
}

function setLive(state) {
  const el = $("#live");
  el.hidden = !state;
  el.dataset.state = state || "";
  el.textContent = state === "live" ? "Live" : "Offline";
  el.title = state === "live" ? "Changes appear as they happen." : "Not receiving live updates; reconnecting…";
}

const EVENT_NAMES = ["sync_finished", "balances_updated", "item_health_changed", "lagged"];

// EventSource reconnects by itself; after a gap the current view redraws everything, since events sent meanwhile
// are lost.
function listen() {
  stopListening();
  const source = new EventSource("/api/events");
  app.events = source;
  let missed = false;
  source.onopen = () => {
    setLive("live");
    if (missed) dispatch("lagged", {});
    missed = false;
  };
  source.onerror = () => { missed = true; setLive("offline"); };
  for (const name of EVENT_NAMES) {
    source.addEventListener(name, (ev) => {
      let data = {};
      try { data = JSON.parse(ev.data || "{}"); } catch { /* keep {} */ }
      dispatch(name, data);
    });
  }
}

function dispatch(name, data) {
  if (pending) {
    // The same event twice changes nothing more; past the cap the view just redraws everything once.
    const key = name + JSON.stringify(data);
    if (!pending.some(([n, d]) => n + JSON.stringify(d) === key)) pending.push([name, data]);
    if (pending.length > MAX_PENDING) pending = [["lagged", {}]];
    return;
  }
  const view = app.current;
  if (view && view.onEvent) Promise.resolve(view.onEvent(name, data)).catch(fail);
}

function stopListening() {
  if (app.events) app.events.close();
  app.events = null;
  setLive(null);
}

export function signedIn(session) {
  app.session = session;
  setCsrf(session.csrf_token);
  $("#who").textContent = session.user.username;
  $("#nav").hidden = false;
  $("#logout").hidden = false;
  listen();
}

function signedOut() {
  stopListening();
  app.session = null;
  setCsrf(null);
  $("#who").textContent = "";
  $("#nav").hidden = true;
  $("#logout").hidden = true;
}

async function boot() {
  app.config = await get("/api/config");
  const mode = $("#mode");
  if (app.config.plaid_mode === "simulator") {
    mode.textContent = "Demo mode: banks are simulated (log in to them as user_good / pass_good).";
    mode.hidden = false;
  }
  let setupNeeded = false;
  try {
    const setup = await get("/api/setup");
    setupNeeded = !!(setup && (setup.needed ?? setup.setup_needed ?? setup.required));
    app.setup = setup;
  } catch { /* an older server without first-run setup */ }
  if (setupNeeded) {
    signedOut();
    if (location.pathname !== "/setup") history.replaceState(null, "", "/setup");
    return route();
  }
  try {
    signedIn(await get("/api/session"));
    if (PUBLIC.has(location.pathname)) history.replaceState(null, "", "/");
  } catch (e) {
    if (e.status !== 401) throw e;
    signedOut();
  }
  await route();
}

$("#logout").addEventListener("click", async () => {
  await api("DELETE", "/api/session").catch(() => {});
  signedOut();
  say("Logged out.", "ok");
  navigate("/login");
});

// Links inside the app move without reloading (the EventSource and the loaded modules stay).
document.addEventListener("click", (ev) => {
  const a = ev.target.closest && ev.target.closest("a[href]");
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || a.target) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.pathname.startsWith("/assets/")) return;
  ev.preventDefault();
  navigate(url.pathname + url.search).then(() => $("#view").focus({ preventScroll: false }));
});
window.addEventListener("popstate", () => route());

boot().catch(fail);
