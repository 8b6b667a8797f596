/*
 * plaid-sim Link: a drop-in replacement for Plaid's link-initialize.js, served by the offline Plaid
 * simulator at {sim}/link/v2/stable/link-initialize.js.
 *
 *   const handler = Plaid.create({ token, onSuccess, onExit, onEvent, onLoad, receivedRedirectUri });
 *   handler.open(); handler.exit(); handler.destroy();
 *
 * Callbacks get Plaid's shapes: onSuccess(public_token, {institution, accounts, link_session_id,
 * transfer_status}), onExit(error|null, {institution, status, link_session_id, request_id}),
 * onEvent(eventName, {error_type, error_code, error_message, exit_status, institution_id,
 * institution_name, institution_search_query, link_session_id, mfa_type, request_id, timestamp,
 * view_name}). The backend is the simulator's /link/session/start and /link/session/submit (CORS-enabled,
 * since the page embedding Link lives on another origin). No dependencies, plain DOM.
 *
 * Content-Security-Policy: the page embedding Link may forbid inline styles and scripts (`style-src 'self'
 * <simulator>`): this script injects no <style> element and no style="" attribute; it sets styles through the
 * CSSOM (element.style.cssText), which CSP allows, and uses no eval.
 *
 * OAuth institutions (Platypus OAuth Bank): picking one asks /link/session/oauth for the bank's page and navigates
 * the top window there; the bank redirects to the link token's redirect_uri?oauth_state_id=...; the page there
 * calls Plaid.create({token: <the same>, receivedRedirectUri: window.location.href}) and open(), and Link finishes
 * with onSuccess (/link/session/oauth/complete). Without a redirect_uri on the token, Link shows Plaid's error.
 * Update mode on an OAuth bank takes the same round trip (no credentials): Link opens on the bank's OAUTH pane,
 * "Continue" goes to the bank's page, and the resumed Link repairs the Item.
 * Not modelled: handler.submit() (Layer), account selection and MFA panes.
 */
(function () {
  "use strict";

  // The simulator's base URL is wherever this script came from (it may be mounted under a prefix).
  var SCRIPT_PATH = /\/link\/v2\/stable\/link-initialize\.js(?:[?#].*)?$/;
  var current = document.currentScript;
  var BASE = current && current.src ? current.src.replace(SCRIPT_PATH, "") : window.location.origin;

  var FONT = "-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif";
  var STYLE = {
    overlay: "all:initial;position:fixed;inset:0;z-index:2147483647;display:flex;align-items:center;" +
      "justify-content:center;background:rgba(17,24,39,0.55);font-family:" + FONT,
    dialog: "box-sizing:border-box;width:380px;max-width:calc(100vw - 32px);max-height:calc(100vh - 32px);" +
      "overflow:auto;background:#fff;color:#111827;border-radius:16px;padding:24px;" +
      "box-shadow:0 20px 50px rgba(0,0,0,0.3);outline:none;font:15px/1.45 " + FONT,
    top: "display:flex;align-items:center;justify-content:space-between;margin-bottom:4px",
    brand: "font-size:12px;font-weight:600;letter-spacing:0.06em;text-transform:uppercase;color:#6b7280",
    close: "border:0;background:transparent;font-size:24px;line-height:1;cursor:pointer;color:#374151;" +
      "padding:4px 8px;border-radius:8px",
    title: "font-size:20px;font-weight:700;margin:8px 0 4px",
    sub: "margin:0 0 16px;color:#4b5563;font-size:14px",
    label: "display:block;font-size:13px;font-weight:600;margin:12px 0 4px",
    input: "box-sizing:border-box;width:100%;padding:10px 12px;font:inherit;border:1px solid #d1d5db;" +
      "border-radius:8px;background:#fff;color:#111827",
    list: "list-style:none;margin:12px 0 0;padding:0;max-height:300px;overflow:auto",
    item: "display:block;box-sizing:border-box;width:100%;text-align:left;margin:0 0 6px;padding:12px;" +
      "font:inherit;color:#111827;background:#f9fafb;border:1px solid #e5e7eb;border-radius:8px;cursor:pointer",
    primary: "display:block;box-sizing:border-box;width:100%;margin-top:18px;padding:12px;font:inherit;" +
      "font-weight:600;color:#fff;background:#111827;border:0;border-radius:8px;cursor:pointer",
    link: "border:0;background:transparent;color:#2563eb;font:inherit;font-size:13px;padding:0;cursor:pointer",
    hint: "margin:12px 0 0;font-size:12px;color:#6b7280",
    error: "margin:12px 0 0;padding:10px 12px;border-radius:8px;background:#fef2f2;color:#991b1b;" +
      "border:1px solid #fecaca;font-size:14px",
    footer: "margin:20px 0 0;font-size:11px;color:#9ca3af;text-align:center"
  };

  // el("button", {id: "x", onclick: f}, [children]): attributes starting with "on" become listeners.
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined) return;
      if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), value);
      else if (key === "text") node.textContent = value;
      // Through the CSSOM, not a style="" attribute: the embedding page's CSP allows no inline style attributes.
      else if (key === "style") node.style.cssText = value;
      else node.setAttribute(key, value);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function post(path, body) {
    return fetch(BASE + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().then(function (json) { return { ok: res.ok, body: json }; });
    }).catch(function (err) {
      // The simulator could not be reached: report it the way Plaid reports its own outages.
      return { ok: false, body: {
        error_type: "API_ERROR", error_code: "INTERNAL_SERVER_ERROR",
        error_message: "could not reach the Plaid simulator at " + BASE + ": " + err,
        display_message: "Something went wrong. Please try again later.", request_id: null
      } };
    });
  }

  function plaidError(body) {
    return {
      error_type: body.error_type, error_code: body.error_code,
      error_message: body.error_message, display_message: body.display_message === undefined ? null : body.display_message
    };
  }

  function noop() {}

  function create(config) {
    config = config || {};
    var onSuccess = config.onSuccess || noop;
    var onExit = config.onExit || noop;
    var onEvent = config.onEvent || noop;
    var onLoad = config.onLoad || noop;
    var token = config.token;

    var session = null;      // /link/session/start response
    var startError = null;   // Plaid error if the link token was refused
    var loaded = false, wantOpen = false, destroyed = false;
    var overlay = null, returnFocus = null, opened = 0; // `opened` tells a stale answer from a live one
    var view = null, institution = null, lastError = null, requestId = null;

    function linkSessionId() { return session ? session.link_session_id : null; }

    function emit(name, extra) {
      var meta = {
        error_type: null, error_code: null, error_message: null, exit_status: null,
        institution_id: institution ? institution.institution_id : null,
        institution_name: institution ? institution.name : null,
        institution_search_query: null, link_session_id: linkSessionId(), mfa_type: null,
        request_id: requestId, timestamp: new Date().toISOString(), view_name: view
      };
      Object.keys(extra || {}).forEach(function (k) { meta[k] = extra[k]; });
      try { onEvent(name, meta); } catch (e) { setTimeout(function () { throw e; }); }
    }

    function exitStatus() {
      if (view === "SELECT_INSTITUTION") return "institution_not_found";
      if (!institution) return null;
      return institution.oauth ? "requires_oauth" : "requires_credentials";
    }

    function close() {
      if (overlay && overlay.parentNode) overlay.parentNode.removeChild(overlay);
      overlay = null;
      document.removeEventListener("keydown", onKeydown, true);
      if (returnFocus && typeof returnFocus.focus === "function") returnFocus.focus();
      returnFocus = null;
    }

    function finishExit(error) {
      var status = exitStatus();
      emit("EXIT", { exit_status: status });
      close();
      var inst = institution ? { name: institution.name, institution_id: institution.institution_id } : null;
      onExit(error, { institution: inst, status: status, link_session_id: linkSessionId(), request_id: requestId });
    }

    function fail(body) {
      lastError = plaidError(body);
      requestId = body.request_id || requestId;
      emit("ERROR", { error_type: lastError.error_type, error_code: lastError.error_code,
        error_message: lastError.error_message });
    }

    // Escape closes; Tab stays inside the dialog (it is modal).
    function onKeydown(event) {
      if (!overlay) return;
      if (event.key === "Escape") {
        event.preventDefault();
        finishExit(lastError);
      } else if (event.key === "Tab") {
        var focusable = overlay.querySelectorAll("button, input");
        if (!focusable.length) return;
        var first = focusable[0], last = focusable[focusable.length - 1];
        if (event.shiftKey && document.activeElement === first) { event.preventDefault(); last.focus(); }
        else if (!event.shiftKey && document.activeElement === last) { event.preventDefault(); first.focus(); }
        else if (!overlay.contains(document.activeElement)) { event.preventDefault(); first.focus(); }
      }
    }

    function render(viewName, title, subtitle, body, focusTarget) {
      view = viewName;
      var content = overlay.querySelector("[data-testid=plaid-sim-view]");
      content.setAttribute("data-view", viewName);
      content.textContent = "";
      content.appendChild(el("h2", { id: "plaid-sim-title", style: STYLE.title, text: title }));
      if (subtitle) content.appendChild(el("p", { style: STYLE.sub, text: subtitle }));
      body.forEach(function (node) { if (node) content.appendChild(node); });
      emit("TRANSITION_VIEW");
      // Keep focus inside the dialog even on views without inputs (screen readers follow it).
      (focusTarget || overlay.querySelector("[role=dialog]")).focus();
    }

    function showPicker() {
      institution = null;
      var list = el("ul", { id: "plaid-sim-institutions", "data-testid": "plaid-sim-institutions",
        "aria-label": "Institutions", style: STYLE.list });
      var search = el("input", { id: "plaid-sim-search", "data-testid": "plaid-sim-search", type: "search",
        autocomplete: "off", placeholder: "Search", style: STYLE.input,
        oninput: function () { fill(search.value); } });
      function fill(query) {
        var q = query.trim().toLowerCase();
        list.textContent = "";
        session.institutions.filter(function (i) {
          return !q || i.name.toLowerCase().indexOf(q) !== -1 || i.institution_id === q;
        }).forEach(function (inst) {
          list.appendChild(el("li", {}, [el("button", {
            type: "button", style: STYLE.item, "data-testid": "plaid-sim-institution",
            "data-institution-id": inst.institution_id, text: inst.name,
            onclick: function () { pick(inst); }
          })]));
        });
        if (!list.firstChild) {
          list.appendChild(el("li", { "data-testid": "plaid-sim-no-results", style: STYLE.hint,
            text: "No institutions match \u201c" + query + "\u201d." }));
        }
      }
      fill("");
      render("SELECT_INSTITUTION", "Select your bank", (session.client_name || "This application") +
        " uses Plaid to connect your accounts.", [
        el("label", { for: "plaid-sim-search", style: STYLE.label, text: "Search institutions" }),
        search, list
      ], search);
    }

    function pick(inst) {
      institution = inst;
      emit("SELECT_INSTITUTION");
      if (inst.oauth) startOAuth();
      else showCredentials();
    }

    // OAuth: the bank's own page logs the user in; the top window goes there and comes back to redirect_uri.
    function startOAuth() {
      var generation = opened;
      render("LOADING", "Opening " + institution.name + "\u2026", null, [
        el("p", { "data-testid": "plaid-sim-loading", role: "status", style: STYLE.sub,
          text: "You will log in on your bank's website." })
      ]);
      post("/link/session/oauth", {
        link_token: token, link_session_id: linkSessionId(), institution_id: institution.institution_id
      }).then(function (res) {
        if (!overlay || generation !== opened) return;
        if (!res.ok) {
          fail(res.body);
          return showOAuthError(lastError.display_message || lastError.error_message);
        }
        emit("OPEN_OAUTH");
        var target = BASE + res.body.authorize_path;
        try { window.top.location.href = target; } catch (e) { window.location.href = target; }
      });
    }

    // Update mode on an OAuth bank: the login is repaired at the bank's own page, like the first link.
    function showOAuthContinue() {
      var go = el("button", { type: "button", style: STYLE.primary, "data-testid": "plaid-sim-oauth-continue",
        text: "Continue to " + institution.name, onclick: startOAuth });
      render("OAUTH", "Reconnect " + institution.name, "Your login for this bank needs to be updated. " +
        "You will log in on your bank's website and come back here.", [go], go);
    }

    function showOAuthError(message) {
      // Update mode repairs one Item at one bank: try that bank again rather than pick another.
      var again = session.mode === "update"
        ? el("button", { type: "button", style: STYLE.primary, "data-testid": "plaid-sim-try-again",
          text: "Try again", onclick: showOAuthContinue })
        : el("button", { type: "button", style: STYLE.primary, "data-testid": "plaid-sim-choose-another",
          text: "Choose another bank", onclick: showPicker });
      render("ERROR", "Couldn't connect to " + institution.name, null, [
        el("div", { id: "plaid-sim-error", "data-testid": "plaid-sim-error", role: "alert", style: STYLE.error,
          text: message }), again
      ], again);
    }

    // Back from the bank (receivedRedirectUri): finish the Link session that went there.
    function finishOAuth() {
      var generation = opened;
      institution = session.oauth.institution;
      render("LOADING", "Connecting to " + institution.name + "\u2026", null, [
        el("p", { "data-testid": "plaid-sim-loading", role: "status", style: STYLE.sub,
          text: "Finishing the connection with your bank." })
      ]);
      post("/link/session/oauth/complete", {
        link_token: token, link_session_id: linkSessionId(), oauth_state_id: session.oauth.oauth_state_id
      }).then(function (res) {
        if (!overlay || generation !== opened) return;
        if (!res.ok) {
          fail(res.body);
          return finishExit(lastError);
        }
        lastError = null;
        requestId = res.body.request_id || requestId;
        emit("HANDOFF");
        close();
        onSuccess(res.body.public_token, res.body.metadata);
      });
    }

    // After a failed attempt the username stays filled in and focus goes to the password.
    function showCredentials(errorMessage, previousUsername) {
      var username = el("input", { id: "plaid-sim-username", "data-testid": "plaid-sim-username", type: "text",
        name: "username", autocomplete: "username", autocapitalize: "none", spellcheck: "false",
        required: "", style: STYLE.input });
      var password = el("input", { id: "plaid-sim-password", "data-testid": "plaid-sim-password",
        type: "password", name: "password", autocomplete: "current-password", required: "", style: STYLE.input });
      var error = errorMessage ? el("div", { id: "plaid-sim-error", "data-testid": "plaid-sim-error", role: "alert",
        style: STYLE.error, text: errorMessage }) : null;
      var back = session.mode === "update" ? null : el("button", { type: "button", style: STYLE.link,
        "data-testid": "plaid-sim-back", text: "\u2190 Choose another bank", onclick: showPicker });
      var form = el("form", { id: "plaid-sim-credentials", "data-testid": "plaid-sim-credentials", novalidate: "",
        onsubmit: function (event) { event.preventDefault(); submit(username.value, password.value); }
      }, [
        error,
        el("label", { for: "plaid-sim-username", style: STYLE.label, text: "Username" }), username,
        el("label", { for: "plaid-sim-password", style: STYLE.label, text: "Password" }), password,
        el("p", { id: "plaid-sim-hint", "data-testid": "plaid-sim-hint", style: STYLE.hint,
          text: "Simulator credentials: user_good / pass_good" }),
        el("button", { type: "submit", id: "plaid-sim-submit", "data-testid": "plaid-sim-submit",
          style: STYLE.primary, text: "Submit" })
      ]);
      username.setAttribute("aria-describedby", error ? "plaid-sim-error plaid-sim-hint" : "plaid-sim-hint");
      if (previousUsername) username.value = previousUsername;
      render("CREDENTIAL", "Log in to " + institution.name, session.mode === "update" ?
        "Your login for this bank needs to be updated." : "Enter your online banking credentials.",
        [back, form], previousUsername ? password : username);
    }

    function submit(username, password) {
      var generation = opened;
      emit("SUBMIT_CREDENTIALS");
      render("LOADING", "Connecting to " + institution.name + "\u2026", null, [
        el("p", { "data-testid": "plaid-sim-loading", role: "status", style: STYLE.sub,
          text: "Verifying your credentials." })
      ]);
      post("/link/session/submit", {
        link_token: token, link_session_id: linkSessionId(), institution_id: institution.institution_id,
        username: username, password: password
      }).then(function (res) {
        if (!overlay || generation !== opened) return; // closed (and maybe reopened) meanwhile
        if (!res.ok) {
          fail(res.body);
          // A dead link token cannot be retried: Plaid exits with the error.
          if (lastError.error_code === "INVALID_LINK_TOKEN") return finishExit(lastError);
          return showCredentials(lastError.display_message || lastError.error_message, username);
        }
        lastError = null;
        requestId = res.body.request_id || requestId;
        emit("HANDOFF");
        close();
        onSuccess(res.body.public_token, res.body.metadata);
      });
    }

    function show() {
      if (overlay || destroyed) return;
      if (startError) {
        // Plaid opens, reports the refused token and exits with it.
        fail(startError);
        emit("EXIT");
        onExit(lastError, { institution: null, status: null, link_session_id: null, request_id: requestId });
        return;
      }
      opened += 1;
      returnFocus = document.activeElement;
      lastError = null;
      institution = null;
      overlay = el("div", { id: "plaid-sim-overlay", "data-testid": "plaid-sim-overlay", style: STYLE.overlay }, [
        el("div", { id: "plaid-sim-dialog", "data-testid": "plaid-sim-dialog", role: "dialog", tabindex: "-1",
          "aria-modal": "true", "aria-labelledby": "plaid-sim-title", style: STYLE.dialog }, [
          el("div", { style: STYLE.top }, [
            el("span", { style: STYLE.brand, text: "Plaid \u00b7 simulator" }),
            el("button", { type: "button", id: "plaid-sim-close", "data-testid": "plaid-sim-close",
              "aria-label": "Close", style: STYLE.close, text: "\u00d7",
              onclick: function () { finishExit(lastError); } })
          ]),
          el("div", { "data-testid": "plaid-sim-view" }),
          el("p", { style: STYLE.footer, text: "Offline Plaid simulator \u2014 no real bank is contacted." })
        ])
      ]);
      document.body.appendChild(overlay);
      document.addEventListener("keydown", onKeydown, true);
      var updating = session.mode === "update" && session.institution;
      view = updating ? (session.institution.oauth ? "OAUTH" : "CREDENTIAL") : "SELECT_INSTITUTION";
      emit("OPEN");
      if (session.oauth) {
        finishOAuth();
      } else if (updating) {
        institution = session.institution;
        if (institution.oauth) showOAuthContinue();
        else showCredentials();
      } else {
        showPicker();
      }
    }

    var start = { link_token: token };
    if (config.receivedRedirectUri) start.received_redirect_uri = config.receivedRedirectUri;
    post("/link/session/start", start).then(function (res) {
      if (destroyed) return;
      if (res.ok) session = res.body;
      else startError = res.body;
      requestId = res.body.request_id || null;
      loaded = true;
      onLoad();
      if (wantOpen) show();
    });

    return {
      open: function () {
        if (loaded) show();
        else wantOpen = true; // like Plaid, open() before onLoad opens as soon as Link is ready
      },
      exit: function (options, callback) {
        if (typeof options === "function") { callback = options; options = {}; }
        if (overlay) finishExit(lastError);
        if (typeof callback === "function") callback();
      },
      destroy: function () {
        destroyed = true;
        wantOpen = false;
        close();
      }
    };
  }

  window.Plaid = { create: create, version: "plaid-sim" };
})();
