#!/usr/bin/env python3
"""Peak memory of `banksync serve` under a login flood (issue 13): the server as a child process on SQLite, its
resident memory read from /proc/PID/status.

First a control flood: CONCURRENCY simultaneous `GET /api/transactions` with an unknown API token, each looked up
in the store (the reader connections a login's name lookup opens) and refused before anything is hashed: what the
same number of connections, requests and store reads cost without hashing. (A malformed login body, the control
before, is refused before the store is read; the reader pool then opened its connections during the first hashing
flood, ~1 MiB of that flood's peak.) Then two floods of CONCURRENCY simultaneous `POST /api/session` (threads
released together by a barrier):
  1. unknown names (each a distinct name, so the per-name lockout never answers for the hashing pool);
  2. real names with wrong passwords (USERS users, the requests spread over them, at most 10 per name: the
     lockout's limit, so every one of them reaches the password check or the pool's queue).
Before each flood the kernel's peak counter is reset (`5 > /proc/PID/clear_refs`), so each flood's VmHWM is its
own. Prints one markdown table: peak and after-flood RSS, answers by status, and the bound the pool should hold it
to: the control flood's peak plus hash concurrency x ~19 MiB.

usage: bench/login_flood.py BANKSYNC_EXE [CONCURRENCY=150] [USERS=15]
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

ARGON2_MIB = 19  # argon2id m_cost of the password hashes (auth/password.rs)


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def reset_peak(pid):
    # Linux >= 4.0: writing 5 resets VmHWM to the current RSS.
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def login_or_control(url, username, password):
    """`password` None asks for a listing with an unknown API token instead (the control flood)."""
    if password is None:
        request = urllib.request.Request(url + "/api/transactions", headers={"authorization": f"Bearer {username}"})
    else:
        request = urllib.request.Request(
            url + "/api/session",
            data=json.dumps({"username": username, "password": password}).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception as e:  # a refused or reset connection is an answer too: count it
        return type(e).__name__


def flood(url, credentials):
    barrier = threading.Barrier(len(credentials))
    statuses = [None] * len(credentials)

    def one(i, username, password):
        barrier.wait()
        statuses[i] = login_or_control(url, username, password)

    threads = [threading.Thread(target=one, args=(i, u, p)) for i, (u, p) in enumerate(credentials)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Counter(statuses), time.monotonic() - started


def main():
    exe = sys.argv[1]
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 150
    users = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    data = tempfile.mkdtemp(prefix="banksync-login-flood-")
    port = 20000 + os.getpid() % 20000
    env = dict(
        os.environ,
        BANKSYNC_DATA_DIR=data,
        BANKSYNC_LISTEN=f"127.0.0.1:{port}",
        PLAID_CLIENT_ID="bench",
        PLAID_SECRET="bench",
        RUST_LOG="warn",
    )
    for i in range(users):
        subprocess.run([exe, "user", "add", f"user{i}"], input=b"a real password here\n", env=env, check=True,
                       stdout=subprocess.DEVNULL)
    server = subprocess.Popen([exe, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/health", timeout=1).read()
                break
            except Exception:
                time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start")
        cpus = os.cpu_count()
        idle = status_kib(server.pid, "VmRSS")
        print(f"login flood: `banksync serve` (SQLite, release), {concurrency} concurrent `POST /api/session`, "
              f"{cpus} CPUs (default hash concurrency = CPUs, queue 32); idle RSS {idle / 1024:.1f} MiB")
        print()
        print("| flood | answers | took s | peak RSS MiB | peak above idle MiB | RSS after MiB | "
              "bound: control's peak + CPUs x 19 MiB |")
        print("|---|---|---:|---:|---:|---:|---:|")
        control = None
        floods = [
            ("control: unknown API tokens, nothing hashed", [(f"no-such-token-{i}", None) for i in range(concurrency)]),
            ("unknown names", [(f"nobody{i}", "some guess here") for i in range(concurrency)]),
            ("real names, wrong passwords",
             [(f"user{i % users}", f"wrong guess {i}") for i in range(min(concurrency, users * 10))]),
        ]
        for name, credentials in floods:
            reset_peak(server.pid)
            answers, took = flood(url, credentials)
            time.sleep(1)
            peak = status_kib(server.pid, "VmHWM")
            after = status_kib(server.pid, "VmRSS")
            answered = ", ".join(f"{n}x {s}" for s, n in sorted(answers.items(), key=lambda kv: str(kv[0])))
            if control is None:
                control = peak
                bound = "-"
            else:
                bound = f"{control / 1024 + cpus * ARGON2_MIB:.0f}"
            print(f"| {name} ({len(credentials)}) | {answered} | {took:.1f} | {peak / 1024:.1f} | "
                  f"{(peak - idle) / 1024:.1f} | {after / 1024:.1f} | {bound} |")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
