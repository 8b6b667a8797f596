"""Drive banksync's web app in headless Chromium like a user, from a server's first run to every view.

First-run owner setup → an API token made on Settings (the "outside" changes below use it) → two banks linked
through the simulator's Link → overview, accounts and transactions appear → filter by category, account and dates,
search, page deep → edit a note and a category inline → spending charts render from real data and drill down
(a bar segment and a legend row) → a live balance refresh with one slow bank (the page stays responsive and each
account updates as its bank answers) → changes made elsewhere appear through /api/events → reconnect after
reset_login → an OAuth bank through /oauth-return → every view at desktop and phone width (no sideways scroll at
390 px), axe-core with no serious/critical violations, screenshots → log out and in. Throughout: no console
errors, no uncaught exceptions, no Content-Security-Policy violations.

usage: BANKSYNC_PASSWORD=PW page_flow.py --url URL --sim-url SIM_URL --username NAME --axe AXE_JS
       --screenshots DIR
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
BANKS = [("ins_109508", "First Platypus Bank"), ("ins_109509", "First Gingham Credit Union")]
OAUTH_BANK = ("ins_127287", "Platypus OAuth Bank")
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
VIEWS = [("/", "overview"), ("/transactions", "transactions"), ("/spending", "spending"), ("/banks", "banks"),
         ("/settings", "settings")]

failures = []


def check(condition, what):
    print(f"  {'ok  ' if condition else 'FAIL'} {what}", flush=True)
    if not condition:
        failures.append(what)
    return condition


def step(title):
    print(f"- {title}", flush=True)


class Outside:
    """Changes made behind the page's back: the API with a bearer token, and the simulator's control API."""

    def __init__(self, url, sim_url):
        self.url, self.sim_url, self.token = url, sim_url, None

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

    def get(self, path):
        status, reply = self.api("GET", path)
        assert status == 200, f"GET {path}: {status} {reply}"
        return reply

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

    def transaction_ids(self, query, pages=1, limit=50):
        ids, cursor = [], None
        for _ in range(pages):
            q = dict(query, limit=str(limit))
            if cursor:
                q["cursor"] = cursor
            page = self.get("/api/transactions?" + urllib.parse.urlencode(q))
            ids += [t["transaction_id"] for t in page["transactions"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        return ids


def row_ids(page):
    return page.eval_on_selector_all("#transactions tbody tr.tx", "rows => rows.map(r => r.dataset.transactionId)")


def wait_for_rows(page, ids, timeout=15000):
    """Waits until the transaction table lists exactly `ids`, in order."""
    page.wait_for_function(
        "ids => JSON.stringify([...document.querySelectorAll('#transactions tbody tr.tx')]"
        ".map(r => r.dataset.transactionId)) === JSON.stringify(ids)", arg=ids, timeout=timeout)


def wait_for_api_rows(page, outside, query, timeout=15.0):
    """Waits until the table lists exactly the API's first page for `query`, reading the API again on every check:
    a sync that lands meanwhile (the second bank's history arrives while these steps run) changes both, and the page
    follows it through its live updates. Returns the ids."""
    deadline = time.monotonic() + timeout
    while True:
        ids = outside.transaction_ids(query)
        if row_ids(page) == ids:
            return ids
        if time.monotonic() > deadline:
            raise TimeoutError(f"the page never listed the API's {len(ids)} rows for {query} "
                               f"(it shows {len(row_ids(page))})")
        page.wait_for_timeout(200)


def wait_until(page, condition, what, timeout=20.0):
    """Waits for a condition held on the Python side, letting Playwright dispatch its events meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        page.wait_for_timeout(50)


def wait_view(page, name):
    page.wait_for_selector(f"#view[data-view={name}][data-ready=true]", timeout=20000)


def nav(page, label, name):
    page.locator("#nav").get_by_role("link", name=label, exact=True).click()
    wait_view(page, name)


def link_bank(page, institution_id, name):
    page.locator("#link-bank").click()
    page.wait_for_selector("[data-testid=plaid-sim-view][data-view=SELECT_INSTITUTION]")
    page.click(f"[data-institution-id={institution_id}]")
    page.wait_for_selector("[data-testid=plaid-sim-view][data-view=CREDENTIAL]")
    sim_credentials(page)
    page.wait_for_function("name => document.querySelector('#message')?.innerText.includes('Linked ' + name)",
                           arg=name, timeout=20000)


def sim_credentials(page):
    dialog = page.locator("#plaid-sim-dialog")
    dialog.get_by_label("Username").fill("user_good")
    dialog.get_by_label("Password").fill("pass_good")
    dialog.get_by_role("button", name="Submit").click()


def run_axe(page, where):
    result = page.evaluate("""async () => {
        const r = await axe.run(document, { resultTypes: ["violations"] });
        return r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")}`);
    }""")
    check(not result, f"axe: no serious or critical violations on {where} {result if result else ''}")


def no_sideways_scroll(page, where):
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    check(width[0] <= width[1], f"{where} at 390 px does not scroll sideways (content {width[0]} px)")


class Flow:
    def __init__(self, page, args, shots):
        self.page, self.args, self.shots = page, args, shots
        self.outside = Outside(args.url, args.sim_url)
        self.password = os.environ["BANKSYNC_PASSWORD"]
        self.items = []

    def shot(self, name):
        path = os.path.join(self.shots, f"{name}.png")
        self.page.screenshot(path=path, full_page=True)

    # ---- first run --------------------------------------------------------------------------------------------
    def first_run(self):
        page, args = self.page, self.args
        step("first-run setup")
        page.goto(args.url + "/transactions")
        page.wait_for_url("**/setup", timeout=15000)
        wait_view(page, "setup")
        check(True, "a fresh server sends the browser to /setup")
        run_axe(page, "setup")
        self.shot("setup-desktop")
        page.get_by_label("User name").fill(args.username)
        page.get_by_label("Password").fill(self.password)
        page.get_by_role("button", name="Create owner account").click()
        wait_view(page, "overview")
        check(page.inner_text("#who") == args.username, "the owner is logged in after setup")
        page.wait_for_selector("#live[data-state=live]:not([hidden])")
        check(True, "the page listens for live updates")
        status, again = self.outside.api("GET", "/api/setup")
        check(status == 200 and not again.get("needed", again.get("setup_needed", False)),
              f"setup is no longer offered ({status} {again})")

    def make_token(self):
        page = self.page
        step("an API token from Settings")
        nav(page, "Settings", "settings")
        page.locator("#token-form").get_by_label("Name").fill("e2e outside changes")
        page.get_by_role("button", name="Create token").click()
        value = page.locator("#new-token-value")
        value.wait_for()
        self.outside.token = value.input_value()
        check(len(self.outside.token) > 20, "a new token is shown once")
        page.wait_for_function("() => document.querySelector('#tokens')?.innerText.includes('e2e outside changes')")
        check(True, "the token is listed")
        status, _ = self.outside.api("GET", "/api/items")
        check(status == 200, f"the token works for the API ({status})")

    # ---- banks, overview, accounts ----------------------------------------------------------------------------
    def link_banks(self):
        page = self.page
        step("link two banks through the simulator's Link")
        nav(page, "Overview", "overview")
        for institution_id, name in BANKS:
            link_bank(page, institution_id, name)
            check(True, f"{name} is linked")
        items = self.outside.get("/api/items")["items"]
        self.items = [i["item_id"] for i in items]
        check(len(items) == 2, f"two Items ({len(items)})")
        accounts = self.outside.get("/api/accounts")["accounts"]
        page.wait_for_function("n => document.querySelectorAll('#accounts li[data-account-id]').length === n",
                               arg=len(accounts), timeout=20000)
        check(True, f"the overview lists every account ({len(accounts)})")
        # The first syncs run in the background; sync each once more so every transaction is in.
        for item_id in self.items:
            status, summary = self.outside.sync(item_id)
            check(status == 200, f"a sync through the API ({status} {summary})")
        page.wait_for_selector(".stat[data-currency=USD]", timeout=20000)
        overview = self.outside.get("/api/overview")
        usd = [n for n in overview["net_worth"] if n["currency"] == "USD"][0]
        expected = page.evaluate("n => new Intl.NumberFormat(undefined, {style: 'currency', currency: 'USD'})"
                                 ".format(Number(n))", usd["net"])
        page.wait_for_function("t => document.querySelector('.stat[data-currency=USD] .stat-value')?.innerText === t",
                               arg=expected, timeout=15000)
        check(True, f"net worth in USD is the API's ({expected})")
        check(page.locator(".by-type li").count() == len(overview["by_type"]),
              f"balances by account type ({page.locator('.by-type li').count()} of {len(overview['by_type'])})")

    # ---- transactions -----------------------------------------------------------------------------------------
    def transactions(self):
        page, outside = self.page, self.outside
        step("transactions: table, filters, search, deep paging, inline edits")
        nav(page, "Transactions", "transactions")
        wait_for_api_rows(page, outside, {}, 20.0)
        check(True, "the first page is the API's first page")
        page.wait_for_function("() => [...document.querySelectorAll('#transactions .avatar img')]"
                               ".some(i => i.complete && i.naturalWidth === 64 && i.src.includes('/api/logos/'))")
        check(True, "the simulator's PNG merchant logos load through banksync's /api/logos")
        all_tx = outside.get("/api/transactions?limit=500")["transactions"]
        amounts = page.locator("#transactions tbody tr.tx .amount")
        first = all_tx[0]
        shown = amounts.first.inner_text()
        check(("-" in shown or "\u2212" in shown) == (float(first["amount"]) > 0),
              f"money out shows with a minus, money in with a plus ({first['amount']} → {shown})")

        def apply_and_compare(query, what):
            page.get_by_role("button", name="Apply").click()
            page.wait_for_function("q => location.search.includes(q)", arg=urllib.parse.urlencode(query).split("&")[0])
            wait_view(page, "transactions")
            ids = wait_for_api_rows(page, outside, query)
            check(len(ids) > 0, f"{what}: the page lists the API's {len(ids)} transactions")
            return ids

        # Category (effective category: the user's or Plaid's primary).
        category = next(t["category"] for t in all_tx if t["category"] and not t["category"].startswith("TRANSFER"))
        page.select_option("select[name=category_choice]", f"effective_category:{category}")
        apply_and_compare({"effective_category": category}, f"category {category}")
        icons = page.locator("#transactions tbody tr.tx .cat-icon").count()
        check(icons > 0, f"categories show with their icons ({icons})")
        page.locator("#clear-filters").click()
        wait_view(page, "transactions")

        # Account + dates.
        account = first["account_id"]
        dates = sorted({t["date"] for t in all_tx if t["account_id"] == account})
        start, end = dates[len(dates) // 4], dates[-1]
        page.select_option("select[name=account_id]", account)
        page.fill("input[name=start]", start)
        page.fill("input[name=end]", end)
        apply_and_compare({"account_id": account, "start": start, "end": end}, "account and dates")
        page.locator("#clear-filters").click()
        wait_view(page, "transactions")

        # Search: a prefix of a merchant's name.
        merchant = next(t["merchant_name"] for t in all_tx if t.get("merchant_name") and len(t["merchant_name"]) > 4)
        term = merchant.split()[0][:4].lower()
        page.fill("input[name=q]", term)
        apply_and_compare({"q": term}, f"search {term!r}")
        page.locator("#clear-filters").click()
        wait_view(page, "transactions")

        # Deep paging: "Load more" (keyset, next_cursor) four times.
        for n in range(2, 6):
            if page.locator("#load-more").is_hidden():
                break
            page.locator("#load-more").click()
            page.wait_for_function("n => document.querySelectorAll('#transactions tbody tr.tx').length >= n",
                                   arg=min(n * 50, len(outside.transaction_ids({}, pages=n))))
        ids = row_ids(page)
        expected = outside.transaction_ids({}, pages=(len(ids) + 49) // 50)
        check(ids == expected[:len(ids)] and len(ids) == len(set(ids)) and len(ids) > 50,
              f"paging deep lists the API's pages in order without duplicates ({len(ids)} rows)")
        page.evaluate("() => window.scrollTo(0, 0)")

        # Inline note.
        row = page.locator("#transactions tbody tr.tx").first
        tx_id = row.get_attribute("data-transaction-id")
        row.locator(".note-button").click()
        note = row.get_by_label("Note")
        note.fill("from the browser")
        note.press("Enter")
        row.locator(".note-button.has-note").wait_for()
        check(outside.get(f"/api/transactions/{urllib.parse.quote(tx_id)}")["user_note"] == "from the browser",
              "a note edited inline is saved")
        check(page.evaluate("() => document.activeElement && document.activeElement.classList.contains('note-button')"),
              "focus returns to the note after saving")
        # Inline category.
        row.locator("button.chip").click()
        row.get_by_label("Category", exact=True).select_option("TRAVEL")
        row.get_by_role("button", name="Save").click()
        page.wait_for_function("id => document.querySelector(`tr[data-transaction-id='${id}'] .cat-name`)"
                               "?.innerText === 'Travel'", arg=tx_id)
        check(outside.get(f"/api/transactions/{urllib.parse.quote(tx_id)}")["user_category"] == "TRAVEL",
              "a category changed inline is saved")
        # The detail panel.
        row.locator("td.desc button.link").click()
        panel = page.locator(".details-panel").first
        panel.wait_for()
        text = panel.inner_text()
        check("Payment channel" in text and "Counterparties" in text and "Authorized" in text,
              "the detail panel shows counterparties, location, payment channel and authorized date")
        pre = panel.locator("pre.raw")
        check(pre.is_hidden(), "the raw Plaid JSON starts collapsed")
        panel.locator("summary").click()
        pre.wait_for()
        raw = json.loads(pre.inner_text())
        expected = outside.get(f"/api/transactions/{urllib.parse.quote(tx_id)}/raw")
        check(raw == expected and raw.get("transaction_id") == tx_id and "personal_finance_category" in raw,
              "the detail panel shows Plaid's raw transaction object, pretty-printed, when expanded")
        check("\n  \"" in pre.inner_text(), "the raw JSON is indented")

    # ---- spending ---------------------------------------------------------------------------------------------
    def spending(self):
        page, outside = self.page, self.outside
        step("spending charts and drill-down")
        nav(page, "Spending", "spending")
        cats = outside.get("/api/spending/categories")
        usd = [c for c in cats["currencies"] if c["currency"] == "USD"][0]
        page.wait_for_selector(".legend li a")
        legend = page.eval_on_selector_all(".legend li a", "as => as.map(a => a.dataset.category)")
        check(legend == [c["category"] for c in usd["categories"]][:len(legend)] and legend,
              f"the legend lists the API's categories by total ({len(legend)})")
        drawn = page.evaluate("""() => [...document.querySelectorAll('canvas')].map(c => {
            const chart = Chart.getChart(c);
            return chart ? chart.data.datasets.reduce((n, d) => n + d.data.filter(v => v > 0).length, 0) : -1;
        })""")
        check(len(drawn) >= 2 and all(n > 0 for n in drawn), f"both charts draw real data ({drawn})")
        # A click on a bar segment opens that category's transactions in that month.
        target = page.evaluate("""() => {
            const canvas = document.querySelector('canvas');
            const chart = Chart.getChart(canvas);
            for (let d = 0; d < chart.data.datasets.length; d++) {
              const meta = chart.getDatasetMeta(d);
              for (let i = meta.data.length - 1; i >= 0; i--) {
                const bar = meta.data[i];
                if (chart.data.datasets[d].data[i] > 0 && Math.abs(bar.base - bar.y) > 6) {
                  const r = canvas.getBoundingClientRect();
                  return { x: r.left + bar.x, y: r.top + (bar.y + bar.base) / 2, category: chart.data.datasets[d].category };
                }
              }
            }
            return null;
        }""")
        check(target is not None, "a bar segment to click")
        if target:
            page.mouse.click(target["x"], target["y"])
            page.wait_for_url("**/transactions?effective_category=*", timeout=10000)
            wait_view(page, "transactions")
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(page.url).query))
            check(query["effective_category"] == target["category"] and query["start"].endswith("-01"),
                  f"a bar segment drills down to its category and month ({query})")
            check(len(wait_for_api_rows(page, outside, query)) > 0,
                  "the drill-down lists that category's transactions of that month")
            page.go_back()
            wait_view(page, "spending")
        first = page.locator(".legend li a").first
        category = first.get_attribute("data-category")
        first.click()
        wait_view(page, "transactions")
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(page.url).query))
        check(query.get("effective_category") == category, f"a legend row drills down to {category}")
        wait_for_api_rows(page, outside, query)

    # ---- balances ---------------------------------------------------------------------------------------------
    def balances(self):
        page, outside = self.page, self.outside
        step("live balances with a slow bank")
        nav(page, "Overview", "overview")
        # The slow bank answers after 30 s (as slow as a real bank may be): room, even on a loaded machine, to see the
        # fast one's accounts turn live first and the page answer meanwhile.
        outside.sim("/sim/faults", {"endpoint": "/accounts/balance/get", "latency_ms": 30000, "count": 1})
        page.get_by_role("button", name="Refresh balances").click()
        page.wait_for_selector("#accounts .spinner", timeout=5000)
        check(True, "accounts show that their bank is being asked, with the cached values still shown")
        # One bank answers at once, the other after 30 s: the fast one's accounts turn live while the slow one's wait.
        page.wait_for_function("""() => {
            const rows = [...document.querySelectorAll('#accounts li[data-account-id]')];
            return rows.some(r => r.dataset.source === 'live' && !r.querySelector('.spinner'))
                && rows.some(r => r.querySelector('.spinner'));
        }""", timeout=28000)
        check(True, "each account updates as its bank answers (one live, one still waiting)")
        # Responsive while the slow bank is still being asked: the page takes a keystroke-driven action (focus
        # moves to the refresh button, which is enabled again) and answers a script, with the spinner still up.
        refresh_button = page.get_by_role("button", name="Refresh balances")
        refresh_button.focus()
        responsive = page.evaluate("""() => document.activeElement?.id === 'refresh-balances'
            && !document.activeElement.disabled && !!document.querySelector('#accounts .spinner')""")
        check(responsive, "the page stays responsive while a bank is slow (it reacts while the bank is still asked)")
        page.wait_for_function("() => document.querySelector('#refresh-status')?.innerText.includes('up to date')",
                               timeout=70000)
        live = page.eval_on_selector_all("#accounts li[data-account-id]", "rows => rows.map(r => r.dataset.source)")
        check(live and all(s == "live" for s in live), f"every balance is live afterwards ({live})")
        check("as of" in page.inner_text("#accounts"), "each balance says as of when")
        self.outside._call("DELETE", self.args.sim_url + "/sim/faults")

    # ---- live updates from elsewhere --------------------------------------------------------------------------
    def events_from_elsewhere(self):
        page, outside = self.page, self.outside
        step("changes made elsewhere appear through /api/events")
        nav(page, "Transactions", "transactions")
        page.evaluate("() => { window.sameDocument = true; }")
        before = row_ids(page)
        item_id = self.items[0]
        outside.sim(f"/sim/items/{urllib.parse.quote(item_id)}/advance", {"days": 3})
        status, summary = outside.sync(item_id)
        check(status == 200 and summary["added"] > 0, f"a sync through the API adds transactions ({summary})")
        after = outside.transaction_ids({})
        check(after != before, "the API lists other latest transactions than the page showed")
        wait_for_rows(page, after)
        check(page.evaluate("() => window.sameDocument === true"),
              "the page shows the new transactions without a reload or a click")

    # ---- reconnect --------------------------------------------------------------------------------------------
    def break_login(self, item_id):
        """The bank wants a new login (the simulator's reset_login), and banksync learns it from a refused sync."""
        outside = self.outside
        outside.sim(f"/sim/items/{urllib.parse.quote(item_id)}/reset_login", {})
        status, failed = outside.sync(item_id)
        if status == 202:
            # Queued behind a sync of this Item still running (an earlier step's): its job answers once it ran.
            job_id = failed["job_id"]
            for _ in range(6):
                _, job = outside.api("GET", f"/api/jobs/{urllib.parse.quote(job_id)}?wait=20")
                if job.get("state") in ("done", "failed") or (job.get("result") or {}).get("outcome") == "failed":
                    break
            outcome = (job.get("result") or {}).get("outcome")
            check(outcome in ("failed", "skipped"), f"the queued sync through the API is refused ({outcome}: {job})")
        else:
            check(status == 409, f"the sync through the API is refused ({status})")

    def reconnect(self):
        page, outside = self.page, self.outside
        step("reconnect after reset_login")
        nav(page, "Overview", "overview")
        item_id = self.items[0]
        self.break_login(item_id)
        button = page.locator("#attention").get_by_role("button", name="Reconnect")
        button.wait_for(timeout=15000)
        check(True, "the overview offers Reconnect without a reload")
        self.shot("overview-needs-attention-desktop")
        button.click()
        page.wait_for_selector("[data-testid=plaid-sim-view][data-view=CREDENTIAL]")
        sim_credentials(page)
        page.wait_for_function("() => document.querySelector('#message')?.innerText.includes('reconnected')",
                               timeout=20000)
        page.wait_for_function("() => !document.querySelector('#attention button')", timeout=15000)
        health = [i for i in outside.get("/api/items")["items"] if i["item_id"] == item_id][0]["health"]
        check(health["status"] == "good", f"the bank is healthy again ({health['status']})")

    # ---- OAuth ------------------------------------------------------------------------------------------------
    def oauth(self):
        page, outside = self.page, self.outside
        step("an OAuth bank through /oauth-return")
        nav(page, "Banks", "banks")
        page.locator("#link-bank").click()
        page.wait_for_selector("[data-testid=plaid-sim-view][data-view=SELECT_INSTITUTION]")
        page.click(f"[data-institution-id={OAUTH_BANK[0]}]")
        page.wait_for_url("**/sim/oauth/authorize**", timeout=15000)
        check(True, "Link sends the browser to the bank's own page")
        page.get_by_role("button", name="Approve").click()
        page.wait_for_url("**/oauth-return?oauth_state_id=*", timeout=15000)
        check(True, "the bank sends the browser back to /oauth-return")
        page.wait_for_function("name => document.querySelector('#message')?.innerText.includes('Linked ' + name)",
                               arg=OAUTH_BANK[1], timeout=20000)
        names = [i["institution_name"] for i in outside.get("/api/items")["items"]]
        check(OAUTH_BANK[1] in names, f"the OAuth bank is linked ({names})")
        check(page.evaluate("() => sessionStorage.getItem('banksync.link_token')") is None,
              "the saved link token is cleared")

    def oauth_reconnect(self):
        page, outside = self.page, self.outside
        step("reconnect the OAuth bank after reset_login: through the bank's page, never credentials")
        item_id = next(i["item_id"] for i in outside.get("/api/items")["items"]
                       if i["institution_id"] == OAUTH_BANK[0])
        nav(page, "Banks", "banks")
        self.break_login(item_id)
        card = page.locator(f"#items article[data-item-id='{item_id}']")
        button = card.get_by_role("button", name="Reconnect")
        button.wait_for(timeout=15000)
        check(True, "the Banks view offers Reconnect for the OAuth bank without a reload")
        button.click()
        page.wait_for_selector("[data-testid=plaid-sim-view][data-view=OAUTH]")
        check(page.locator("#plaid-sim-dialog").get_by_label("Password").count() == 0,
              "update mode on an OAuth bank asks for no credentials")
        page.locator("[data-testid=plaid-sim-oauth-continue]").click()
        page.wait_for_url("**/sim/oauth/authorize**", timeout=15000)
        check(True, "Reconnect sends the browser to the bank's own page, like the first link")
        page.get_by_role("button", name="Approve").click()
        page.wait_for_url("**/oauth-return?oauth_state_id=*", timeout=15000)
        page.wait_for_function("() => document.querySelector('#message')?.innerText.includes('reconnected')",
                               timeout=20000)
        page.wait_for_url("**/banks", timeout=15000)
        wait_view(page, "banks")
        page.wait_for_selector(f"#items article[data-item-id='{item_id}'] .badge.good", timeout=15000)
        health = [i for i in outside.get("/api/items")["items"] if i["item_id"] == item_id][0]["health"]
        check(health["status"] == "good", f"the OAuth bank is healthy again ({health['status']})")
        names = [i["institution_name"] for i in outside.get("/api/items")["items"]]
        check(names.count(OAUTH_BANK[1]) == 1, f"the same connection was repaired, not a second one made ({names})")
        check(page.evaluate("() => sessionStorage.getItem('banksync.link_token')") is None,
              "the saved link token is cleared")

    # ---- an event while a view loads ---------------------------------------------------------------------------
    def event_while_loading(self):
        """A sync finishes while the transactions view waits for its first page: the page must not keep showing the
        page it fetched before the sync. The first page's response is held (fetched before the sync, delivered after
        the page's own EventSource received the sync's event, seen through the debugging protocol)."""
        page, outside = self.page, self.outside
        step("an event that arrives while a view is loading is applied after the load")
        item_id = self.items[1]
        cdp = page.context.new_cdp_session(page)
        events = []

        def on_message(e):
            try:
                events.append((e.get("eventName"), json.loads(e.get("data") or "{}")))
            except ValueError:
                pass
        cdp.on("Network.eventSourceMessageReceived", on_message)
        cdp.send("Network.enable")
        # A fresh page, so its EventSource opens while the protocol watches the network.
        page.goto(self.args.url + "/")
        wait_view(page, "overview")
        page.wait_for_selector("#live[data-state=live]:not([hidden])")

        def first_page(url):
            u = urllib.parse.urlparse(url)
            return u.path == "/api/transactions" and urllib.parse.parse_qs(u.query) == {"limit": ["50"]}
        held, seen = [], []

        def hold_the_first(route):
            # Only the view's first request is held; its reload after the event goes through.
            if seen:
                route.continue_()
            else:
                seen.append(route)
                held.append(route)
        page.route(first_page, hold_the_first)
        try:
            page.locator("#nav").get_by_role("link", name="Transactions", exact=True).click()
            wait_until(page, lambda: held, "the transactions view asks for its first page")
            stale = held[0].fetch()
            stale_ids = [t["transaction_id"] for t in stale.json()["transactions"]]
            outside.sim(f"/sim/items/{urllib.parse.quote(item_id)}/advance", {"days": 3})
            status, summary = outside.sync(item_id)
            check(status == 200 and summary["added"] > 0, f"a sync adds transactions meanwhile ({summary})")

            def delivered():
                return any(name == "sync_finished" and data.get("item_id") == item_id
                           and ((data.get("summary") or {}).get("added") or 0) > 0 for name, data in events)
            wait_until(page, delivered, "the page's EventSource received the sync's event")
            check(page.locator("#view[data-ready=true]").count() == 0, "the event arrived while the view was loading")
            held.pop().fulfill(response=stale)
            wait_view(page, "transactions")
            fresh = outside.transaction_ids({})
            check(fresh != stale_ids, "the API's first page changed with the sync")
            wait_for_rows(page, fresh)
            check(True, "the view applied the event that arrived while it loaded (it shows the new first page)")
        finally:
            for route in held:  # a failure above left it held: let the page go on
                route.continue_()
            page.unroute(first_page)
            cdp.detach()

    # ---- every view: phone width, accessibility, screenshots ---------------------------------------------------
    def every_view(self):
        page = self.page
        step("every view at desktop and phone width")
        for width, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            for path, name in VIEWS:
                page.goto(self.args.url + path)
                wait_view(page, name)
                page.wait_for_function("() => !document.querySelector('#view [aria-busy=true]')", timeout=15000)
                if name == "spending":
                    page.wait_for_selector("canvas")
                if name == "banks":
                    page.locator("#items button", has_text="Sync history").first.click()
                    page.wait_for_selector("#items .history-table")
                if name == "transactions":
                    # The detail panel with Plaid's raw JSON open: the longest lines on the page.
                    page.locator("#transactions tbody tr.tx td.desc button.link").first.click()
                    page.locator(".details-panel summary").first.click()
                    page.wait_for_selector(".details-panel pre.raw")
                if width == "phone":
                    no_sideways_scroll(page, name)
                run_axe(page, f"{name} ({width})")
                self.shot(f"{name}-{width}")
        page.set_viewport_size(DESKTOP)

    def logout_and_login(self):
        page, args = self.page, self.args
        step("log out and in")
        page.get_by_role("button", name="Log out").click()
        wait_view(page, "login")
        check(page.is_hidden("#live"), "after logging out the page stops listening")
        run_axe(page, "login")
        self.shot("login-desktop")
        page.set_viewport_size(PHONE)
        no_sideways_scroll(page, "login")
        self.shot("login-phone")
        page.set_viewport_size(DESKTOP)
        page.get_by_label("User name").fill(args.username)
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_function("() => document.querySelector('#login-error')?.innerText.length > 0")
        check(True, f"a wrong password shows an error ({page.inner_text('#login-error')!r})")
        page.get_by_label("Password").fill(self.password)
        page.get_by_role("button", name="Log in").click()
        wait_view(page, "overview")
        check(True, "logged in again")


INIT_SCRIPT = """
document.addEventListener('securitypolicyviolation', (e) => {
  window.reportCsp(`${e.violatedDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--sim-url", required=True)
    parser.add_argument("--axe", required=True)
    parser.add_argument("--screenshots", required=True)
    args = parser.parse_args()
    with open(args.axe, encoding="utf-8") as f:
        axe_source = f.read()

    started = time.monotonic()
    profile = tempfile.mkdtemp(prefix="banksync-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=FLAGS, viewport=DESKTOP)
            context.set_default_timeout(15000)
            csp, errors = [], []
            context.expose_binding("reportCsp", lambda source, text: csp.append(text))
            # Through the debugging protocol, so neither needs an exception in the page's CSP.
            context.add_init_script(script=INIT_SCRIPT)
            context.add_init_script(script=axe_source)
            page = context.pages[0] if context.pages else context.new_page()
            page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))

            def on_console(msg):
                if msg.type != "error":
                    return
                url = (msg.location or {}).get("url", "")
                # Asking for the session while logged out answers 401 by design; Chromium logs any 4xx.
                if "status of 401" in msg.text and url.endswith("/api/session"):
                    return
                print(f"  [console.{msg.type}] {msg.text} ({url})", flush=True)
                errors.append(f"console: {msg.text} ({url})")
            page.on("console", on_console)
            flow = Flow(page, args, args.screenshots)
            for part in (flow.first_run, flow.make_token, flow.link_banks, flow.transactions, flow.spending,
                         flow.balances, flow.events_from_elsewhere, flow.event_while_loading, flow.reconnect,
                         flow.oauth, flow.oauth_reconnect, flow.every_view,
                         flow.logout_and_login):
                try:
                    part()
                except Exception as exc:  # a timeout: report it with what the page showed, go on with the next part
                    check(False, f"{part.__name__} ran to the end ({type(exc).__name__}: {str(exc).splitlines()[0]})")
                    try:
                        print("  page message:", page.inner_text("#message"), "| url:", page.url)
                        page.screenshot(path=os.path.join(args.screenshots, f"failed-{part.__name__}.png"))
                    except Exception:
                        pass
            check(not errors, f"no console errors or uncaught exceptions ({errors})")
            check(not csp, f"no Content-Security-Policy violations ({csp})")
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    print(f"\nscreenshots in {args.screenshots}; {time.monotonic() - started:.0f} s in the browser")
    if failures:
        print(f"\n{len(failures)} check(s) FAILED")
        return 1
    print("\nall page checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
