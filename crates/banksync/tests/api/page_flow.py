"""Drive banksync's web page in headless Chromium like a user: log in, link a bank through the (simulated) Plaid
Link, see the bank, its accounts and transactions, add a note, refresh balances, log out.

usage: page_flow.py --url BANKSYNC_URL --username NAME --password PASSWORD [--screenshot FILE]
Exits 1 when a check fails. Debian's Chromium, never a Playwright-downloaded browser.
"""

import argparse
import shutil
import sys
import tempfile

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
INSTITUTION_ID, INSTITUTION_NAME = "ins_109508", "First Platypus Bank"

failures = []


def check(condition, what):
    print(f"  {'ok  ' if condition else 'FAIL'} {what}")
    if not condition:
        failures.append(what)
    return condition


def run(page, args):
    page.goto(args.url + "/")
    page.wait_for_selector("#login-section:not([hidden])")
    page.get_by_label("User name").fill(args.username)
    page.locator("#login-form").get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("#message.error:not([hidden])")
    check("wrong user name or password" in page.inner_text("#message"),
          f"a wrong password shows an error ({page.inner_text('#message')!r})")

    page.locator("#login-form").get_by_label("Password").fill(args.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("#app-section:not([hidden])")
    check(page.inner_text("#who") == args.username, "logged in as the user")

    # Link a bank through the simulator's drop-in Link.
    page.get_by_role("button", name="Link a bank").click()
    page.wait_for_selector("[data-testid=plaid-sim-view][data-view=SELECT_INSTITUTION]")
    page.click(f"[data-institution-id={INSTITUTION_ID}]")
    page.wait_for_selector("[data-testid=plaid-sim-view][data-view=CREDENTIAL]")
    dialog = page.locator("#plaid-sim-dialog")
    dialog.get_by_label("Username").fill("user_good")
    dialog.get_by_label("Password").fill("pass_good")
    dialog.get_by_role("button", name="Submit").click()
    page.wait_for_function(f"() => document.querySelector('#items tbody').innerText.includes('{INSTITUTION_NAME}')",
                           timeout=20000)
    check(True, "the linked bank is listed")
    check("good" in page.inner_text("#items tbody"), "its health is good")
    page.wait_for_function("() => document.querySelectorAll('#accounts tbody tr').length > 0", timeout=20000)
    check(True, "its accounts are listed")

    # The first sync runs in the background; the page reloads after a few seconds, or "Sync now" forces it.
    page.get_by_role("button", name="Sync now").click()
    page.wait_for_function("() => document.querySelectorAll('#transactions tbody tr').length > 0", timeout=20000)
    rows = page.locator("#transactions tbody tr").count()
    check(rows > 0, f"transactions are listed ({rows})")

    # A note through the prompt dialog.
    page.once("dialog", lambda d: d.accept("from the browser"))
    page.locator("#transactions tbody tr").first.get_by_role("button").click()
    page.wait_for_function("() => document.querySelector('#transactions tbody').innerText.includes('from the browser')")
    check(True, "a note added on the page is shown")

    # Live balances through the 202 + long-poll API.
    page.get_by_role("button", name="Refresh balances").click()
    page.wait_for_function("() => document.querySelector('#message').innerText.includes('up to date')", timeout=30000)
    check("live" in page.inner_text("#accounts tbody"), "balances are live after the refresh")

    if args.screenshot:
        page.screenshot(path=args.screenshot, full_page=True)

    page.get_by_role("button", name="Log out").click()
    page.wait_for_selector("#login-section:not([hidden])")
    page.reload()
    page.wait_for_selector("#login-section:not([hidden])")
    check(True, "after logging out the page asks for a login again")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--screenshot")
    args = parser.parse_args()

    profile = tempfile.mkdtemp(prefix="banksync-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=FLAGS, viewport={"width": 1100, "height": 800})
            context.set_default_timeout(15000)
            page = context.new_page()
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: print(f"  [console.{msg.type}] {msg.text}"))
            try:
                run(page, args)
            except Exception as exc:  # a timeout: report it with what the page showed
                check(False, f"ran to the end ({type(exc).__name__}: {str(exc).splitlines()[0]})")
                print("  page message:", page.inner_text("#message"))
            check(not errors, f"no JavaScript errors ({errors})")
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if failures:
        print(f"\n{len(failures)} check(s) FAILED")
        return 1
    print("\nall page checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
