// Settings: change password (ends the other sessions), sessions (list, sign out the others), API tokens (create —
// shown once —, list, revoke) and, for the owner, users (add, list).
import { get, post, del, enc } from "./api.js";
import { h, section, skeleton, action, say, fail, field, confirmDanger } from "./ui.js";
import { when, ago } from "./format.js";

const listOf = (reply, key) => (Array.isArray(reply) ? reply : reply[key] || []);

export async function mount(root, app) {
  const sessions = h("div#sessions", null, skeleton(2));
  const tokens = h("div#tokens", null, skeleton(2));
  const users = h("div#users", null, skeleton(2));

  const pw = h("form.stack#password-form", null,
    field("Current password", h("input", { name: "current_password", type: "password", autocomplete: "current-password", required: true })),
    field("New password", h("input", { name: "new_password", type: "password", autocomplete: "new-password", required: true, minlength: "8" }), "At least 8 characters. Your other sessions are signed out."),
    h("button.primary", { type: "submit" }, "Change password"));
  pw.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await post("/api/account/password", { current_password: pw.current_password.value, new_password: pw.new_password.value });
      pw.reset();
      say("Password changed; your other sessions were signed out.", "ok");
      await drawSessions();
    } catch (e) { fail(e); }
  });

  const newToken = h("form.inline-form#token-form", null,
    field("Name", h("input", { name: "token_name", required: true, maxlength: "100", placeholder: "e.g. backup script" })),
    h("button.primary", { type: "submit" }, "Create token"));
  const shown = h("div#new-token", { "aria-live": "polite" });
  newToken.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const created = await post("/api/tokens", { name: newToken.token_name.value.trim() });
      newToken.reset();
      const value = h("input#new-token-value", { readonly: true, value: created.token, "aria-label": "Your new API token" });
      shown.replaceChildren(h("div.notice", null, h("p", null, h("strong", null, "Copy this token now: it is shown only once.")), value,
        action("Copy", async () => { await navigator.clipboard.writeText(created.token); say("Copied.", "ok"); })));
      value.select();
      await drawTokens();
    } catch (e) { fail(e); }
  });

  root.append(h("div.page-head", null, h("h1", null, "Settings")),
    section("Password", pw),
    section("Sessions", h("p.muted", null, "Where you are logged in."), sessions),
    section("API tokens", h("p.muted", null, "For scripts: send as ", h("code", null, "Authorization: Bearer TOKEN"), "."), newToken, shown, tokens));
  const isOwner = !!(app.session.is_owner ?? (app.session.user && app.session.user.is_owner));
  if (isOwner) root.append(section("Users", h("p.muted", null, "Each user sees only their own banks."), users));

  async function drawSessions() {
    const list = listOf(await get("/api/sessions"), "sessions");
    sessions.replaceChildren(h("ul.list", null, list.map((s) => h("li.row", null,
      h("div.row-main", null, h("div.row-title", null, s.user_agent || "A browser", s.current ? h("span.badge.good", null, "This session") : null),
        h("div.muted.small", null, `Signed in ${when(s.created_at)}${s.last_seen_at ? " · last active " + ago(s.last_seen_at) : ""}`)),
      s.current ? null : h("div.row-end", null, action("Sign out", async () => { await del(`/api/sessions/${enc(s.id)}`); await drawSessions(); }, { "aria-label": `Sign out the session from ${when(s.created_at)}` }))))),
    list.filter((s) => !s.current).length ? action("Sign out all other sessions", async () => {
      await post("/api/sessions/sign-out-others", {});
      say("Your other sessions were signed out.", "ok");
      await drawSessions();
    }) : null);
  }

  async function drawTokens() {
    const list = listOf(await get("/api/tokens"), "tokens").map((t) => ({ ...t, label: t.name || t.label || "(no name)" }));
    tokens.replaceChildren(list.length ? h("ul.list", null, list.map((t) => h("li.row", { dataset: { tokenId: t.id } },
      h("div.row-main", null, h("div.row-title", null, t.label),
        h("div.muted.small", null, `Created ${when(t.created_at)} · ${t.last_used_at ? "last used " + ago(t.last_used_at) : "never used"}`)),
      h("div.row-end", null, action("Revoke", async () => {
        if (!await confirmDanger(`Revoke "${t.label}"?`, "Scripts using it stop working at once.", "Revoke token")) return;
        await del(`/api/tokens/${enc(t.id)}`);
        say("Token revoked.", "ok");
        await drawTokens();
      }, { class: "danger", "aria-label": `Revoke ${t.label}` }))))) : h("p.muted", null, "No API tokens."));
  }

  async function drawUsers() {
    const list = listOf(await get("/api/users"), "users");
    const form = h("form.inline-form#user-form", null,
      field("User name", h("input", { name: "username", required: true, autocomplete: "off" })),
      field("Password", h("input", { name: "password", type: "password", required: true, minlength: "8", autocomplete: "new-password" })),
      h("button.primary", { type: "submit" }, "Add user"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await post("/api/users", { username: form.username.value.trim(), password: form.password.value });
        say(`User ${form.username.value.trim()} added.`, "ok");
        await drawUsers();
      } catch (e) { fail(e); }
    });
    users.replaceChildren(h("ul.list", null, list.map((u) => h("li.row", null,
      h("div.row-main", null, h("div.row-title", null, u.username, u.is_owner ? h("span.badge", null, "Owner") : null),
        h("div.muted.small", null, u.created_at ? `Added ${when(u.created_at)}` : ""))))), form);
  }

  await Promise.all([drawSessions().catch(fail), drawTokens().catch(fail), isOwner ? drawUsers().catch(fail) : null]);
  return { onEvent() {} };
}
