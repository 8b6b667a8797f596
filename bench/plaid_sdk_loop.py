"""The peer in the initial-sync scenario: Plaid's official Python SDK (plaid-python), unmodified, walking one
Item's `/transactions/sync` pages from the simulator. Fetch and decode only (the SDK builds its typed models and
checks types as it goes, as an application using it would); nothing is stored.

Usage: plaid_sdk_loop.py SIM_URL N   (links `user_bulk_N` at First Platypus Bank, 730 days)
Prints one line: `sdk N SECONDS PEAK_RSS_KB CPU_SECONDS MACHINE_CPU_SECONDS` (the times cover the sync loop only,
not the link; the machine's CPU is every process's, the simulator's included). Exit 1 if the loop did not bring
exactly N transactions.
"""

import os
import resource
import sys
import time

import plaid
from plaid.api import plaid_api
from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest
from plaid.model.products import Products
from plaid.model.sandbox_public_token_create_request import SandboxPublicTokenCreateRequest
from plaid.model.sandbox_public_token_create_request_options import SandboxPublicTokenCreateRequestOptions
from plaid.model.sandbox_public_token_create_request_options_transactions import (
    SandboxPublicTokenCreateRequestOptionsTransactions,
)
from plaid.model.transactions_sync_request import TransactionsSyncRequest

# The simulator's default keys (plaid_sim::SimConfig::default()).
CLIENT_ID = "banksync-sim-client"
SECRET = "banksync-sim-secret"
INSTITUTION = "ins_109508"


def machine_cpu_seconds():
    """CPU time the whole machine has spent busy so far, over all cores (/proc/stat: user, nice, system, irq, softirq
    and steal)."""
    with open("/proc/stat") as stat:
        ticks = [int(f) for f in stat.readline().split()[1:]]
    return (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]) / os.sysconf("SC_CLK_TCK")


def main():
    url, n = sys.argv[1].rstrip("/"), int(sys.argv[2])
    configuration = plaid.Configuration(
        host=url, api_key={"clientId": CLIENT_ID, "secret": SECRET, "plaidVersion": "2020-09-14"}
    )
    api = plaid_api.PlaidApi(plaid.ApiClient(configuration))
    options = SandboxPublicTokenCreateRequestOptions(
        override_username=f"user_bulk_{n}",
        override_password="pass",
        transactions=SandboxPublicTokenCreateRequestOptionsTransactions(days_requested=730),
    )
    public = api.sandbox_public_token_create(
        SandboxPublicTokenCreateRequest(
            institution_id=INSTITUTION, initial_products=[Products("transactions")], options=options
        )
    ).public_token
    token = api.item_public_token_exchange(ItemPublicTokenExchangeRequest(public_token=public)).access_token

    started = time.perf_counter()
    cpu_before, machine_cpu_before = time.process_time(), machine_cpu_seconds()
    cursor, count, has_more = "", 0, True
    while has_more:
        request = TransactionsSyncRequest(access_token=token, count=500)
        if cursor:
            request.cursor = cursor
        page = api.transactions_sync(request)
        count += len(page.added)
        cursor, has_more = page.next_cursor, page.has_more
    seconds = time.perf_counter() - started
    cpu, machine_cpu = time.process_time() - cpu_before, machine_cpu_seconds() - machine_cpu_before
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"sdk {count} {seconds:.3f} {peak_kb} {cpu:.3f} {machine_cpu:.3f}")
    if count != n:
        print(f"expected {n} transactions, got {count}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
