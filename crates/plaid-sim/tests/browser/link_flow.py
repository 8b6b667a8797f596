"""Drive the simulator's drop-in Link (link-initialize.js) in headless Chromium, like a user would.

The page (served by the Rust test from another origin than the simulator) loads
{sim}/link/v2/stable/link-initialize.js, calls Plaid.create({token: ?token=...}) and records every
callback on window.__results; its "Connect a bank" button calls handler.open().

usage: link_flow.py --page URL --out results.json --run SCENARIO:LINK_TOKEN [--run ...] [--screenshots DIR]
scenarios:
  connect  picker -> First Platypus Bank -> wrong password (error shown) -> user_good/pass_good -> onSuccess
  update   update-mode token: no picker, the Item's institution, good login -> onSuccess
  close    open -> Escape -> onExit(null); open again -> pick a bank -> close button -> onExit(null);
           Tab stays in the modal; handler.exit() -> onExit(null); destroy() then open() shows nothing
  invalid  a refused link token -> open -> onExit(INVALID_LINK_TOKEN error)
  oauth    Platypus OAuth Bank -> the top window goes to the simulator's bank page -> Approve -> back at the
           page's redirect_uri (/oauth-return?oauth_state_id=...), which resumes Link with receivedRedirectUri
           -> onSuccess in the same Link session
  oauth_no_redirect  a token without redirect_uri -> Platypus OAuth Bank -> Plaid's error shown, no navigation
Every scenario also checks that the page (under a strict CSP) saw no CSP violation.
Writes {scenario: {"public_token", "metadata", "events", ...}} to --out; exits 1 when a check fails.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTITUTION_ID, INSTITUTION_NAME = "ins_109508", "First Platypus Bank"
OAUTH_ID, OAUTH_NAME = "ins_127287", "Platypus OAuth Bank"
EVENT_KEYS = {"link_session_id", "institution_id", "institution_name", "error_code", "timestamp", "view_name"}
ERROR_KEYS = {"error_type", "error_code", "error_message", "display_message"}

failures = []


def check(condition, what):
    print(f"  {'ok  ' if condition else 'FAIL'} {what}")
    if not condition:
        failures.append(what)
    return condition


def results(page):
    return page.evaluate("() => window.__results")


def wait_for_result(page, key, timeout_ms=15000):
    page.wait_for_function(f"() => window.__results.{key} !== null", timeout=timeout_ms)
    return results(page)


def open_link(page, url, token):
    page.goto(f"{url}?token={token}")
    page.wait_for_function("() => window.__results.loaded === true", timeout=15000)
    page.click("#connect")


def event_names(res):
    return [e["name"] for e in res["events"]]


def check_events(res, expected, label):
    names = event_names(res)
    position = 0
    for name in names:  # `expected` must appear in this order (other events may be interleaved)
        if position < len(expected) and name == expected[position]:
            position += 1
    check(position == len(expected), f"{label}: events in order {expected} (got {names})")
    check(all(EVENT_KEYS <= set(e["metadata"]) for e in res["events"]),
          f"{label}: every event's metadata has {sorted(EVENT_KEYS)}")


def check_dialog_accessible(page, label):
    dialog = page.locator("[role=dialog]")
    check(dialog.get_attribute("aria-modal") == "true", f"{label}: the dialog is aria-modal")
    title_id = dialog.get_attribute("aria-labelledby")
    check(bool(title_id) and page.locator(f"#{title_id}").is_visible(), f"{label}: the dialog is labelled")
    check(page.evaluate("() => document.querySelector('[role=dialog]').contains(document.activeElement)"),
          f"{label}: focus is inside the dialog")


def login(page, username, password):
    # By label, so this also proves the inputs are labelled.
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Submit").click()


def check_success(res, label):
    success = res["success"]
    check(success is not None and res["exit"] is None, f"{label}: onSuccess, no onExit")
    if success is None:
        return
    meta = success["metadata"]
    check(isinstance(success["public_token"], str) and success["public_token"].startswith("public-"),
          f"{label}: a public token")
    check(meta.get("institution") == {"name": INSTITUTION_NAME, "institution_id": INSTITUTION_ID},
          f"{label}: metadata.institution is First Platypus Bank ({meta.get('institution')})")
    accounts = meta.get("accounts") or []
    check(len(accounts) >= 1, f"{label}: metadata.accounts lists the accounts ({len(accounts)})")
    account_keys = {"id", "name", "mask", "type", "subtype", "verification_status", "class_type"}
    check(all(account_keys <= set(a) for a in accounts), f"{label}: accounts have Plaid's keys {sorted(account_keys)}")
    check(isinstance(meta.get("link_session_id"), str) and meta["link_session_id"] != "",
          f"{label}: metadata.link_session_id")
    check("transfer_status" in meta, f"{label}: metadata.transfer_status is present")
    session_ids = {e["metadata"]["link_session_id"] for e in res["events"]}
    check(session_ids == {meta.get("link_session_id")}, f"{label}: events carry the same link_session_id")


def scenario_connect(page, url, token, shots):
    open_link(page, url, token)
    page.wait_for_selector("[data-testid=plaid-sim-view][data-view=SELECT_INSTITUTION]")
    check_dialog_accessible(page, "connect")
    check(page.evaluate("() => document.activeElement.id") == "plaid-sim-search", "connect: focus starts in search")
    if shots:
        page.screenshot(path=os.path.join(shots, "link-modal.png"))
    # The search narrows the list.
    total = page.locator("[data-testid=plaid-sim-institution]").count()
    page.get_by_label("Search institutions").fill("platypus")
    shown = page.locator("[data-testid=plaid-sim-institution]").count()
    check(1 <= shown < total, f"connect: search narrows {total} institutions to {shown}")
    page.click(f"[data-institution-id={INSTITUTION_ID}]")
    page.wait_for_selector("[data-testid=plaid-sim-view][data-view=CREDENTIAL]")
    check(INSTITUTION_NAME in page.inner_text("#plaid-sim-title"), "connect: credential form for the chosen bank")
    check("user_good / pass_good" in page.inner_text("[data-testid=plaid-sim-hint]"), "connect: credentials hint")

    login(page, "user_good", "wrong-password")
    error = page.wait_for_selector("[data-testid=plaid-sim-error]", timeout=15000)
    message = error.inner_text()
    res = results(page)
    errors = [e for e in res["events"] if e["name"] == "ERROR"]
    check(len(errors) == 1 and errors[0]["metadata"]["error_code"] == "INVALID_CREDENTIALS",
          "connect: ERROR event with INVALID_CREDENTIALS")
    check(bool(message.strip()), f"connect: the display_message is shown inline ({message!r})")
    check(res["success"] is None and res["exit"] is None, "connect: no callback after a wrong password")
    check(page.input_value("#plaid-sim-username") == "user_good" and
          page.evaluate("() => document.activeElement.id") == "plaid-sim-password",
          "connect: after the error the username is kept and focus is on the password")
    if shots:
        page.screenshot(path=os.path.join(shots, "link-modal-error.png"))

    login(page, "user_good", "pass_good")
    res = wait_for_result(page, "success")
    check(page.locator("#plaid-sim-overlay").count() == 0, "connect: the modal is gone after success")
    check_success(res, "connect")
    check_events(res, ["OPEN", "SELECT_INSTITUTION", "SUBMIT_CREDENTIALS", "ERROR", "SUBMIT_CREDENTIALS",
                       "HANDOFF"], "connect")
    check("EXIT" not in event_names(res), "connect: no EXIT event on success")
    return {"public_token": res["success"]["public_token"], "metadata": res["success"]["metadata"],
            "events": res["events"]}


def scenario_update(page, url, token, shots):
    open_link(page, url, token)
    page.wait_for_selector("[data-testid=plaid-sim-view][data-view=CREDENTIAL]")
    check(page.locator("[data-testid=plaid-sim-search]").count() == 0, "update: no institution picker")
    check(INSTITUTION_NAME in page.inner_text("#plaid-sim-title"), "update: shows the Item's institution")
    check(page.evaluate("() => document.activeElement.id") == "plaid-sim-username", "update: focus on username")
    if shots:
        page.screenshot(path=os.path.join(shots, "link-modal-update.png"))
    login(page, "user_good", "pass_good")
    res = wait_for_result(page, "success")
    check_success(res, "update")
    check_events(res, ["OPEN", "SUBMIT_CREDENTIALS", "HANDOFF"], "update")
    check("SELECT_INSTITUTION" not in event_names(res), "update: no SELECT_INSTITUTION")
    return {"public_token": res["success"]["public_token"], "metadata": res["success"]["metadata"],
            "events": res["events"]}


def check_exit(res, label, status):
    exit_ = res["exit"]
    check(exit_ is not None and res["success"] is None, f"{label}: onExit, no onSuccess")
    if exit_ is None:
        return
    meta = exit_["metadata"]
    check(exit_["error"] is None, f"{label}: onExit error is null ({exit_['error']})")
    check({"institution", "status", "link_session_id", "request_id"} <= set(meta),
          f"{label}: exit metadata has institution, status, link_session_id, request_id")
    check(isinstance(meta.get("link_session_id"), str), f"{label}: exit metadata.link_session_id")
    check(meta.get("status") == status, f"{label}: exit status {status} (got {meta.get('status')})")


def scenario_close(page, url, token, shots):
    open_link(page, url, token)
    page.wait_for_selector("#plaid-sim-dialog")
    page.keyboard.press("Escape")
    res = wait_for_result(page, "exit")
    check(page.locator("#plaid-sim-overlay").count() == 0, "close: Escape removes the modal")
    check(page.evaluate("() => document.activeElement.id") == "connect", "close: focus returns to the opener")
    check_exit(res, "close (Escape)", "institution_not_found")
    check(res["exit"]["metadata"]["institution"] is None, "close (Escape): no institution chosen")
    check_events(res, ["OPEN", "EXIT"], "close (Escape)")

    # Same handler, second session: choose a bank, then the close button.
    page.evaluate("() => { window.__results.exit = null; window.__results.events = []; }")
    page.click("#connect")
    page.click(f"[data-institution-id={INSTITUTION_ID}]")
    page.get_by_role("button", name="Close").click()
    res = wait_for_result(page, "exit")
    check_exit(res, "close (button)", "requires_credentials")
    check((res["exit"]["metadata"].get("institution") or {}).get("institution_id") == INSTITUTION_ID,
          "close (button): exit metadata names the chosen institution")
    check_events(res, ["OPEN", "SELECT_INSTITUTION", "EXIT"], "close (button)")

    # Tab stays inside the modal; handler.exit() closes it like the user would; after destroy(),
    # open() shows nothing.
    page.evaluate("() => { window.__results.exit = null; }")
    page.click("#connect")
    page.wait_for_selector("#plaid-sim-dialog")
    for _ in range(12):
        page.keyboard.press("Tab")
    check(page.evaluate("() => document.querySelector('[role=dialog]').contains(document.activeElement)"),
          "close: Tab keeps focus inside the modal")
    page.evaluate("() => window.__handler.exit()")
    res = wait_for_result(page, "exit")
    check(page.locator("#plaid-sim-overlay").count() == 0 and res["exit"]["error"] is None,
          "close: handler.exit() closes Link and calls onExit(null)")
    page.evaluate("() => { window.__handler.destroy(); window.__handler.open(); }")
    page.wait_for_timeout(300)
    check(page.locator("#plaid-sim-overlay").count() == 0, "close: after destroy(), open() shows nothing")
    return {"exit": res["exit"], "events": res["events"]}


def scenario_invalid(page, url, token, shots):
    open_link(page, url, token)
    res = wait_for_result(page, "exit")
    error = res["exit"]["error"]
    check(error is not None and set(error) == ERROR_KEYS, f"invalid: onExit error has Plaid's shape ({error})")
    check(error is not None and error.get("error_code") == "INVALID_LINK_TOKEN",
          "invalid: error_code INVALID_LINK_TOKEN")
    check(res["success"] is None, "invalid: no onSuccess")
    check(page.locator("#plaid-sim-overlay").count() == 0, "invalid: no modal for a refused token")
    return {"exit": res["exit"], "events": res["events"]}


def wait_for_page_result(page, key, timeout_ms=15000):
    # After a navigation the new page defines window.__results itself: wait for it too.
    page.wait_for_function(f"() => window.__results && window.__results.{key} !== null", timeout=timeout_ms)
    return results(page)


def scenario_oauth(page, url, token, shots):
    open_link(page, url, token)
    page.wait_for_selector("[data-testid=plaid-sim-view][data-view=SELECT_INSTITUTION]")
    session_id = results(page)["events"][0]["metadata"]["link_session_id"]
    page.click(f"[data-institution-id={OAUTH_ID}]")
    page.wait_for_url("**/sim/oauth/authorize?oauth_state_id=*", timeout=15000)
    check(OAUTH_NAME in page.inner_text("body"), "oauth: the top window shows the bank's own page")
    if shots:
        page.screenshot(path=os.path.join(shots, "link-oauth-bank.png"))
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url("**/oauth-return?oauth_state_id=*", timeout=15000)
    check("oauth_state_id=" in page.url, f"oauth: the bank sent the browser back to redirect_uri ({page.url})")
    res = wait_for_page_result(page, "success")
    success = res["success"]
    check(success is not None and res["exit"] is None, "oauth: onSuccess after the resume, no onExit")
    meta = success["metadata"]
    check(isinstance(success["public_token"], str) and success["public_token"].startswith("public-"),
          "oauth: a public token")
    check(meta.get("institution") == {"name": OAUTH_NAME, "institution_id": OAUTH_ID},
          f"oauth: metadata.institution is the OAuth bank ({meta.get('institution')})")
    check(len(meta.get("accounts") or []) >= 1, "oauth: metadata lists the accounts")
    check(meta.get("link_session_id") == session_id, "oauth: the resumed Link continues the same Link session")
    check_events(res, ["OPEN", "HANDOFF"], "oauth (resumed)")
    check(page.locator("#plaid-sim-overlay").count() == 0, "oauth: the modal is gone after success")
    return {"public_token": success["public_token"], "metadata": meta, "events": res["events"]}


def scenario_oauth_no_redirect(page, url, token, shots):
    open_link(page, url, token)
    page.wait_for_selector("[data-testid=plaid-sim-view][data-view=SELECT_INSTITUTION]")
    page.click(f"[data-institution-id={OAUTH_ID}]")
    error = page.wait_for_selector("[data-testid=plaid-sim-error]", timeout=15000)
    check(bool(error.inner_text().strip()), f"oauth_no_redirect: Plaid's error is shown ({error.inner_text()!r})")
    check(page.url.startswith(url), f"oauth_no_redirect: no navigation ({page.url})")
    res = results(page)
    errors = [e for e in res["events"] if e["name"] == "ERROR"]
    check(len(errors) == 1 and errors[0]["metadata"]["error_code"] == "INVALID_FIELD",
          f"oauth_no_redirect: ERROR event with INVALID_FIELD ({[e['metadata']['error_code'] for e in errors]})")
    check("OPEN_OAUTH" not in event_names(res), "oauth_no_redirect: no OPEN_OAUTH")
    page.get_by_role("button", name="Choose another bank").click()
    page.wait_for_selector("[data-testid=plaid-sim-view][data-view=SELECT_INSTITUTION]")
    page.keyboard.press("Escape")
    res = wait_for_result(page, "exit")
    check((res["exit"]["error"] or {}).get("error_code") == "INVALID_FIELD",
          "oauth_no_redirect: onExit reports the error")
    check(res["success"] is None, "oauth_no_redirect: no onSuccess")
    return {"exit": res["exit"], "events": res["events"]}


SCENARIOS = {"connect": scenario_connect, "update": scenario_update, "close": scenario_close,
             "invalid": scenario_invalid, "oauth": scenario_oauth, "oauth_no_redirect": scenario_oauth_no_redirect}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--page", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--run", action="append", required=True, help="SCENARIO:LINK_TOKEN")
    parser.add_argument("--screenshots")
    args = parser.parse_args()

    output = {}
    profile = tempfile.mkdtemp(prefix="plaid-sim-chromium-")
    try:
        with sync_playwright() as playwright:
            # A fresh profile per run; Debian's Chromium, never a Playwright-downloaded browser.
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                viewport={"width": 1024, "height": 720})
            context.set_default_timeout(15000)
            for run in args.run:
                name, _, token = run.partition(":")
                page = context.new_page()
                page_errors = []
                page.on("pageerror", lambda exc: page_errors.append(str(exc)))
                page.on("console", lambda msg: print(f"  [console.{msg.type}] {msg.text}"))
                started = time.monotonic()
                print(f"scenario {name}")
                try:
                    output[name] = SCENARIOS[name](page, args.page, token, args.screenshots)
                except Exception as exc:  # a timeout or a crash: report it and go on with the next scenario
                    traceback.print_exc()
                    check(False, f"{name}: ran to the end ({type(exc).__name__}: {str(exc).splitlines()[0]})")
                    output[name] = {"results": page.evaluate("() => window.__results")}
                check(not page_errors, f"{name}: no JavaScript errors ({page_errors})")
                violations = page.evaluate("() => window.__results ? window.__results.csp_violations : []")
                check(not violations, f"{name}: no Content-Security-Policy violations ({violations})")
                print(f"  ({time.monotonic() - started:.1f}s)")
                page.close()
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)

    with open(args.out, "w") as f:
        json.dump(output, f, indent=2)
    if failures:
        print(f"\n{len(failures)} check(s) FAILED:")
        for failure in failures:
            print(f"  - {failure}")
        return 1
    print("\nall Link checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
