"""Drive banksync's web page in headless Chromium like a user: log in, link a bank through the (simulated) Plaid
Link, see the bank, its accounts and transactions, add a note, refresh balances, log out. Meanwhile changes made
outside the page (the simulator moves time, a script syncs and refreshes balances through the API with a bearer
token, the bank asks for a new login) must appear on the page by themselves: no reload, no click.

usage: BANKSYNC_TOKEN=API_TOKEN page_flow.py --url BANKSYNC_URL --sim-url SIMULATOR_URL --username NAME
       --password PASSWORD [--screenshot FILE]
Exits 1 when a check fails. Debian's Chromium, never a Playwright-downloaded browser.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

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


class Outside:
    """Changes made behind the page's back: the API with a bearer token, and the simulator's control API."""

    def __init__(self, args):
        self.url, self.sim_url, self.token = args.url, args.sim_url, os.environ["BANKSYNC_TOKEN"]

    def _call(self, method, url, body=None, token=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def api(self, method, path, body=None):
        return self._call(method, self.url + path, body, self.token)

    def sim(self, path, body):
        status, reply = self._call("POST", self.sim_url + path, body)
        assert status == 200, f"simulator {path}: {status} {reply}"
        return reply

    def sync(self, item_id):
        """A sync of its own (not one that joined a sync already running), as (status, body)."""
        for _ in range(100):
            status, reply = self.api("POST", f"/api/items/{urllib.parse.quote(item_id)}/sync", {})
            if status != 200 or not reply.get("coalesced"):
                return status, reply
            time.sleep(0.05)
        raise AssertionError("every sync joined another one")


def page_transaction_ids(page):
    return page.eval_on_selector_all("#transactions tbody tr", "rows => rows.map(r => r.dataset.transactionId)")


def wait_for_rows(page, ids, timeout):
    """Waits until the transaction table lists exactly `ids`, in order."""
    page.wait_for_function(
        "ids => JSON.stringify([...document.querySelectorAll('#transactions tbody tr')]"
        ".map(r => r.dataset.transactionId)) === JSON.stringify(ids)", arg=ids, timeout=timeout)


def run(page, args):
    outside = Outside(args)
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
    page.wait_for_selector("#live[data-state=live]:not([hidden])")
    check(True, f"the page listens for live updates ({page.inner_text('#live')!r})")
    # Survives only as long as this document does: a reload would drop it.
    page.evaluate("() => { window.sameDocument = true; }")

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

    # The first sync runs in the background; "Sync now" forces one. Either way its sync_finished event redraws.
    page.get_by_role("button", name="Sync now").click()
    page.wait_for_function("() => document.querySelectorAll('#transactions tbody tr').length > 0", timeout=20000)
    rows = page.locator("#transactions tbody tr").count()
    check(rows > 0, f"transactions are listed ({rows})")

    # Outside the page: the bank posts new transactions and a script syncs through the API. The page redraws the
    # transactions from the sync_finished event.
    status, listed = outside.api("GET", "/api/items")
    item_id = listed["items"][0]["item_id"]
    # Let the page settle on what the API holds now (the first sync's own event may still be redrawing).
    status, now = outside.api("GET", "/api/transactions?limit=50")
    wait_for_rows(page, [t["transaction_id"] for t in now["transactions"]], 20000)
    before = page_transaction_ids(page)
    moved = outside.sim(f"/sim/items/{urllib.parse.quote(item_id)}/advance", {"days": 3})
    status, summary = outside.sync(item_id)
    check(status == 200 and summary["added"] > 0,
          f"a sync through the API adds the new transactions ({status} {summary}, {moved})")
    status, now = outside.api("GET", "/api/transactions?limit=50")
    after = [t["transaction_id"] for t in now["transactions"]]
    check(after != before, "the API lists other latest transactions than the page showed")
    wait_for_rows(page, after, 15000)
    check(True, "the page shows the new transactions without a reload or a click")

    # A note through the prompt dialog.
    page.once("dialog", lambda d: d.accept("from the browser"))
    page.locator("#transactions tbody tr").first.get_by_role("button").click()
    page.wait_for_function("() => document.querySelector('#transactions tbody').innerText.includes('from the browser')")
    check(True, "a note added on the page is shown")

    # Outside the page: a script refreshes live balances; the balances_updated event redraws the accounts.
    accounts = page.inner_text("#accounts tbody")
    check("(cached)" in accounts and "(live)" not in accounts, "the balances are Plaid's cached ones so far")
    status, started = outside.api("POST", "/api/balances/refresh", {})
    check(status == 202, f"a balance refresh through the API starts ({status} {started})")
    job = started
    while job.get("state") != "done":
        status, job = outside.api("GET", f"/api/balances/refresh/{urllib.parse.quote(started['job_id'])}?wait=20")
    check(all(i["state"] == "ok" for i in job["items"]), f"the refresh succeeded ({job})")
    page.wait_for_function("() => document.querySelector('#accounts tbody').innerText.includes('(live)')",
                           timeout=15000)
    check(True, "the page shows the live balances without a reload or a click")

    # Live balances through the 202 + long-poll API.
    page.get_by_role("button", name="Refresh balances").click()
    page.wait_for_function("() => document.querySelector('#message').innerText.includes('up to date')", timeout=30000)
    check("live" in page.inner_text("#accounts tbody"), "balances are live after the refresh")

    # Outside the page: the bank asks for a new login, and a sync through the API finds out. The
    # item_health_changed event redraws the bank's health and offers to reconnect.
    outside.sim(f"/sim/items/{urllib.parse.quote(item_id)}/reset_login", {})
    status, failed = outside.sync(item_id)
    check(status == 409, f"the sync through the API is refused ({status} {failed})")
    page.wait_for_selector("#items tbody button:text-is('Reconnect')", timeout=15000)
    check("login_required" in page.inner_text("#items tbody"),
          f"the page shows the bank needs a new login without a reload ({page.inner_text('#items tbody')!r})")
    check(page.evaluate("() => window.sameDocument === true"), "the page was never reloaded")

    if args.screenshot:
        page.screenshot(path=args.screenshot, full_page=True)

    page.get_by_role("button", name="Log out").click()
    page.wait_for_selector("#login-section:not([hidden])")
    check(page.is_hidden("#live"), "after logging out the page stops listening")
    page.reload()
    page.wait_for_selector("#login-section:not([hidden])")
    check(True, "after logging out the page asks for a login again")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--sim-url", required=True)
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
