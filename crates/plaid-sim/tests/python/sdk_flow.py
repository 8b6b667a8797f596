"""Drive the offline Plaid simulator with Plaid's official Python SDK (plaid-python), unmodified,
through all 13 endpoints banksync uses.

The SDK deserializes every response into typed models and checks types as it goes
(`_check_return_type` stays on), so a response that strays from the OpenAPI spec breaks this script.
On top of that it checks behaviour: the sync loop converges to the simulator's ground truth, and
errors come back with Plaid's codes.

Environment: PLAID_SIM_URL (e.g. http://127.0.0.1:4000), PLAID_CLIENT_ID, PLAID_SECRET.
Exit status 0 when every check passed; otherwise 1, with every failed check listed.
"""

import base64
import json
import os
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import plaid
from plaid.api import plaid_api
from plaid.model.accounts_balance_get_request import AccountsBalanceGetRequest
from plaid.model.accounts_get_request import AccountsGetRequest
from plaid.model.country_code import CountryCode
from plaid.model.item_get_request import ItemGetRequest
from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest
from plaid.model.item_remove_request import ItemRemoveRequest
from plaid.model.item_webhook_update_request import ItemWebhookUpdateRequest
from plaid.model.link_token_create_request import LinkTokenCreateRequest
from plaid.model.link_token_create_request_user import LinkTokenCreateRequestUser
from plaid.model.products import Products
from plaid.model.sandbox_item_fire_webhook_request import SandboxItemFireWebhookRequest
from plaid.model.sandbox_item_reset_login_request import SandboxItemResetLoginRequest
from plaid.model.sandbox_public_token_create_request import SandboxPublicTokenCreateRequest
from plaid.model.sandbox_public_token_create_request_options import SandboxPublicTokenCreateRequestOptions
from plaid.model.transactions_refresh_request import TransactionsRefreshRequest
from plaid.model.transactions_sync_request import TransactionsSyncRequest
from plaid.model.webhook_type import WebhookType
from plaid.model.webhook_verification_key_get_request import WebhookVerificationKeyGetRequest

URL = os.environ["PLAID_SIM_URL"].rstrip("/")
CLIENT_ID = os.environ["PLAID_CLIENT_ID"]
SECRET = os.environ["PLAID_SECRET"]
INSTITUTION = "ins_109508"  # First Platypus Bank
BULK_SIZE = 1234  # user_bulk_<N> holds exactly N transactions: forces several pages of 500

failures = []


def check(condition, what):
    if condition:
        print(f"  ok   {what}")
    else:
        print(f"  FAIL {what}")
        failures.append(what)
    return condition


def client(secret=SECRET):
    configuration = plaid.Configuration(
        host=URL,
        api_key={"clientId": CLIENT_ID, "secret": secret, "plaidVersion": "2020-09-14"},
    )
    return plaid_api.PlaidApi(plaid.ApiClient(configuration))


def sim(method, path, body=None):
    """The simulator's control API (/sim/...): plain JSON, not part of Plaid."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(URL + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


class WebhookReceiver:
    """A loopback endpoint that keeps each delivery's Plaid-Verification JWT and JSON body."""

    def __init__(self):
        deliveries = self.deliveries = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                deliveries.append((self.headers.get("Plaid-Verification"), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, code, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for jwt, body in list(self.deliveries):
                if body.get("webhook_code") == code:
                    return jwt, body
            time.sleep(0.05)
        raise RuntimeError(f"no {code} webhook within {timeout}s")


def jwt_kid(jwt):
    header = jwt.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


def plaid_error(call, *args):
    """Run a call that must fail; return the PlaidError body parsed from the SDK's ApiException."""
    try:
        call(*args)
    except plaid.ApiException as e:
        body = json.loads(e.body)
        body["_http_status"] = e.status
        return body
    return None


def expect_error(label, call, *args, error_type, error_code, status=None):
    body = plaid_error(call, *args)
    if not check(body is not None, f"{label}: the call fails"):
        return
    got = (body.get("error_type"), body.get("error_code"))
    check(got == (error_type, error_code), f"{label}: {error_type}/{error_code} (got {got[0]}/{got[1]})")
    check(isinstance(body.get("request_id"), str) and body["request_id"], f"{label}: error carries a request_id")
    if status is not None:
        check(body["_http_status"] == status, f"{label}: HTTP {status} (got {body['_http_status']})")


def new_item(api, username=None):
    options = SandboxPublicTokenCreateRequestOptions(override_username=username, override_password="any") \
        if username else SandboxPublicTokenCreateRequestOptions()
    created = api.sandbox_public_token_create(SandboxPublicTokenCreateRequest(
        institution_id=INSTITUTION, initial_products=[Products("transactions")], options=options))
    public_token = created.public_token
    exchanged = api.item_public_token_exchange(ItemPublicTokenExchangeRequest(public_token=public_token))
    return public_token, exchanged.access_token, exchanged.item_id


def sync_all(api, access_token, cursor=None, state=None):
    """The documented /transactions/sync loop; returns (transactions by id, final cursor, pages)."""
    state = dict(state or {})
    pages = 0
    for attempt in range(50):
        kwargs = {"access_token": access_token, "count": 500}
        if cursor:
            kwargs["cursor"] = cursor
        page = api.transactions_sync(TransactionsSyncRequest(**kwargs))
        pages += 1
        status = page.transactions_update_status.value
        if page.next_cursor == "" and status == "NOT_READY":
            time.sleep(0.2)  # data not ready yet: Plaid answers empty, try again
            continue
        for txn in list(page.added) + list(page.modified):
            state[txn.transaction_id] = txn
        for removed in page.removed:
            state.pop(removed.transaction_id, None)
        cursor = page.next_cursor
        if not page.has_more:
            return state, cursor, pages
    raise RuntimeError("sync did not finish within 50 pages")


def compare_with_truth(label, item_id, synced):
    truth = {t["transaction_id"]: t for t in sim("GET", f"/sim/items/{item_id}/transactions")["transactions"]}
    check(len(synced) == len(truth), f"{label}: synced {len(synced)} transactions, ground truth has {len(truth)}")
    missing = sorted(set(truth) - set(synced))[:5]
    extra = sorted(set(synced) - set(truth))[:5]
    check(not missing and not extra, f"{label}: same transaction ids (missing {missing}, extra {extra})")
    differing = []
    for tid, txn in synced.items():
        want = truth.get(tid)
        if want is None:
            continue
        got = (txn.account_id, str(txn.date), float(txn.amount), txn.pending, txn.name)
        expected = (want["account_id"], want["date"], float(want["amount"]), want["pending"], want["name"])
        if got != expected:
            differing.append((tid, got, expected))
    check(not differing, f"{label}: account/date/amount/pending/name match ground truth {differing[:3]}")
    return truth


def main():
    api = client()
    print(f"plaid-python {plaid.__version__} against {URL}")

    print("token -> exchange")
    public_token, access_token, item_id = new_item(api)
    check(public_token.startswith("public-"), f"public token looks like Plaid's ({public_token[:15]}...)")
    check(access_token.startswith("access-"), "access token looks like Plaid's")

    print("accounts, balance, item")
    accounts = api.accounts_get(AccountsGetRequest(access_token=access_token)).accounts
    check(len(accounts) >= 3, f"Item has several accounts ({len(accounts)})")
    types = {a.type.value for a in accounts}
    check({"depository", "credit"} <= types, f"checking/savings and a credit card ({sorted(types)})")
    balances = api.accounts_balance_get(AccountsBalanceGetRequest(access_token=access_token)).accounts
    check(sorted(a.account_id for a in balances) == sorted(a.account_id for a in accounts),
          "balance/get returns the same accounts")
    item = api.item_get(ItemGetRequest(access_token=access_token)).item
    check(item.item_id == item_id and item.institution_id == INSTITUTION, "item/get: the Item and its institution")
    check(item.error is None, "item/get: a fresh Item has no error")

    print("transactions/sync, full history")
    synced, cursor, pages = sync_all(api, access_token)
    account_ids = {a.account_id for a in accounts}
    check(all(t.account_id in account_ids for t in synced.values()), "every transaction belongs to an account")
    compare_with_truth("full sync", item_id, synced)
    print(f"       ({len(synced)} transactions in {pages} pages)")

    print("transactions/sync after the bank moves 5 days")
    moved = sim("POST", f"/sim/items/{item_id}/advance", {"days": 5})
    print(f"       (advance: {moved})")
    synced, cursor, _ = sync_all(api, access_token, cursor, synced)
    compare_with_truth("incremental sync", item_id, synced)
    _, _, pages = sync_all(api, access_token, cursor, synced)
    check(pages == 1, "a sync from the final cursor is one empty page")

    print(f"transactions/sync of a user_bulk_{BULK_SIZE} Item")
    _, bulk_token, bulk_item = new_item(api, f"user_bulk_{BULK_SIZE}")
    bulk, _, pages = sync_all(api, bulk_token)
    check(len(bulk) == BULK_SIZE, f"{BULK_SIZE} transactions synced (got {len(bulk)})")
    check(pages >= 3, f"{BULK_SIZE} transactions take at least 3 pages of 500 (took {pages})")
    compare_with_truth("bulk sync", bulk_item, bulk)

    print("link/token/create")
    link = api.link_token_create(LinkTokenCreateRequest(
        client_name="banksync", language="en", country_codes=[CountryCode("US")],
        user=LinkTokenCreateRequestUser(client_user_id="sdk-test-user"), products=[Products("transactions")]))
    check(link.link_token.startswith("link-"), "link token looks like Plaid's")
    update = api.link_token_create(LinkTokenCreateRequest(
        client_name="banksync", language="en", country_codes=[CountryCode("US")],
        user=LinkTokenCreateRequestUser(client_user_id="sdk-test-user"), access_token=access_token))
    check(update.link_token.startswith("link-"), "update-mode link token")

    print("webhooks: item/webhook/update, sandbox/item/fire_webhook, webhook_verification_key/get")
    receiver = WebhookReceiver()
    updated = api.item_webhook_update(ItemWebhookUpdateRequest(access_token=access_token, webhook=receiver.url))
    check(updated.item.webhook == receiver.url, "item/webhook/update sets the Item's webhook")
    _, ack = receiver.wait_for("WEBHOOK_UPDATE_ACKNOWLEDGED")
    check(ack.get("new_webhook_url") == receiver.url, "WEBHOOK_UPDATE_ACKNOWLEDGED delivered to the new URL")
    fired = api.sandbox_item_fire_webhook(SandboxItemFireWebhookRequest(
        access_token=access_token, webhook_type=WebhookType("TRANSACTIONS"), webhook_code="SYNC_UPDATES_AVAILABLE"))
    check(fired.webhook_fired is True, "sandbox/item/fire_webhook")
    jwt, body = receiver.wait_for("SYNC_UPDATES_AVAILABLE")
    check(body.get("item_id") == item_id, "SYNC_UPDATES_AVAILABLE names the Item")
    kid = jwt_kid(jwt)
    key = api.webhook_verification_key_get(WebhookVerificationKeyGetRequest(key_id=kid)).key
    check((key.kid, key.alg, key.crv, key.kty) == (kid, "ES256", "P-256", "EC"),
          "webhook_verification_key/get returns the JWT's ES256 key")
    expect_error("unknown webhook key id", api.webhook_verification_key_get,
                 WebhookVerificationKeyGetRequest(key_id="00000000-0000-0000-0000-000000000000"),
                 error_type="INVALID_INPUT", error_code="INVALID_WEBHOOK_VERIFICATION_KEY_ID", status=400)

    print("transactions/refresh")
    refreshed = api.transactions_refresh(TransactionsRefreshRequest(access_token=access_token))
    check(bool(refreshed.request_id), "transactions/refresh")

    print("errors")
    expect_error("reused public token", api.item_public_token_exchange,
                 ItemPublicTokenExchangeRequest(public_token=public_token),
                 error_type="INVALID_INPUT", error_code="INVALID_PUBLIC_TOKEN", status=400)
    expect_error("unknown access token", api.accounts_get,
                 AccountsGetRequest(access_token="access-sandbox-00000000-0000-0000-0000-000000000000"),
                 error_type="INVALID_INPUT", error_code="INVALID_ACCESS_TOKEN", status=400)
    expect_error("wrong secret", client("not-the-secret").accounts_get,
                 AccountsGetRequest(access_token=access_token),
                 error_type="INVALID_INPUT", error_code="INVALID_API_KEYS", status=400)
    reset = api.sandbox_item_reset_login(SandboxItemResetLoginRequest(access_token=access_token))
    check(reset.reset_login is True, "sandbox/item/reset_login")
    expect_error("after reset_login", api.accounts_get, AccountsGetRequest(access_token=access_token),
                 error_type="ITEM_ERROR", error_code="ITEM_LOGIN_REQUIRED", status=400)
    item = api.item_get(ItemGetRequest(access_token=access_token)).item
    check(item.error is not None and item.error.error_code == "ITEM_LOGIN_REQUIRED",
          "item/get reports the Item's ITEM_LOGIN_REQUIRED error")

    print("item/remove")
    api.item_remove(ItemRemoveRequest(access_token=bulk_token))
    gone = plaid_error(api.accounts_get, AccountsGetRequest(access_token=bulk_token))
    check(gone is not None and gone.get("error_type") == "INVALID_INPUT",
          f"a removed Item's access token is refused ({gone and gone.get('error_code')})")

    if failures:
        print(f"\n{len(failures)} check(s) FAILED:")
        for failure in failures:
            print(f"  - {failure}")
        return 1
    print("\nall SDK checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
