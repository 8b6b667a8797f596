// The views before a session: first-run setup of the owner account, log in, and the return from an OAuth bank.
import { post, get } from "./api.js";
import { h, field, fail, say } from "./ui.js";
import { signedIn } from "./app.js";
import { resumeOAuth } from "./link.js";

function passwordInput(name, autocomplete) {
  return h("input", { name, type: "password", autocomplete, required: true, minlength: name === "password" && autocomplete === "new-password" ? "8" : null });
}

export const login = {
  async mount(root, app) {
    const form = h("form.card.narrow", { novalidate: false },
      h("h1", null, "Log in"),
      field("User name", h("input", { name: "username", autocomplete: "username", required: true })),
      field("Password", passwordInput("password", "current-password")),
      h("div.error-text", { id: "login-error", role: "alert" }),
      h("button.primary", { type: "submit" }, "Log in"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        const session = await post("/api/session", { username: form.username.value, password: form.password.value });
        form.password.value = "";
        signedIn(session);
        const next = new URLSearchParams(location.search).get("next");
        await app.navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/", { replace: true });
      } catch (e) {
        form.querySelector("#login-error").textContent = e.message;
      } finally {
        button.disabled = false;
      }
    });
    root.append(h("div.center", null, form));
    form.username.focus();
  },
};

export const setup = {
  async mount(root, app) {
    const info = app.setup || await get("/api/setup").catch(() => ({}));
    const codeRequired = !!(info.code_required ?? info.setup_code_required ?? info.requires_code);
    const form = h("form.card.narrow", null,
      h("h1", null, "Welcome to banksync"),
      h("p", null, "Create the owner account. The owner can add other people later; each sees only their own banks."),
      codeRequired ? field("Setup code", h("input", { name: "setup_code", autocomplete: "one-time-code", required: true }),
        "Printed in banksync's log when it started.") : null,
      field("User name", h("input", { name: "username", autocomplete: "username", required: true })),
      field("Password", passwordInput("password", "new-password"), "At least 8 characters."),
      h("div.error-text", { id: "setup-error", role: "alert" }),
      h("button.primary", { type: "submit" }, "Create owner account"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        const body = { username: form.username.value, password: form.password.value };
        if (codeRequired) body.setup_code = form.setup_code.value.trim();
        const created = await post("/api/setup", body);
        const session = created && created.csrf_token ? created
          : await post("/api/session", { username: body.username, password: body.password });
        form.password.value = "";
        app.setup = null;
        signedIn(session);
        say("Your account is ready. Link a bank to begin.", "ok");
        await app.navigate("/", { replace: true });
      } catch (e) {
        form.querySelector("#setup-error").textContent = e.message;
      } finally {
        button.disabled = false;
      }
    });
    root.append(h("div.center", null, form));
    form.querySelector("input").focus();
  },
};

export const oauthReturn = {
  async mount(root, app) {
    root.append(h("div.center", null, h("div.card.narrow", null, h("h1", null, "Finishing the link with your bank…"),
      h("p", { role: "status" }, "Plaid Link resumes where your bank sent you back."))));
    try {
      await resumeOAuth(app);
    } catch (e) {
      fail(e);
      await app.navigate("/banks", { replace: true });
    }
  },
};
