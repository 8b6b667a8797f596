#!/usr/bin/env bash
# Sets up everything the plaid-sim proof tests need outside cargo:
#   - Debian's headless Chromium (/usr/bin/chromium) for the browser Link test,
#   - a Python venv at <repo>/.venv with pinned plaid-python (the official SDK), an OpenAPI 3.0
#     schema validator, PyYAML and Playwright (only its Python API + bundled node driver: we drive
#     the system Chromium and never run `playwright install`),
#   - the export validators: bean-check (PyPI beancount) and ofxtools in the same venv, Debian's hledger,
#   - schemathesis, which fuzzes the live API against its OpenAPI document (tests/api/schemathesis.rs).
# Idempotent: a second run is a fast no-op. Override the interpreter with PYTHON=/path/to/python3.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
PYTHON="${PYTHON:-python3}"
CHROMIUM=/usr/bin/chromium

# Pinned: bump deliberately (check `pip index versions plaid-python`).
REQUIREMENTS="plaid-python==46.0.0
openapi-schema-validator==0.9.0
PyYAML==6.0.3
playwright==1.65.2
beancount==3.2.3
ofxtools==1.1.1
schemathesis==4.32.5"

say() { printf '[test-deps] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else return 1; fi
}

apt_updated=0
apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        say "missing system packages: $*; run as root: apt-get update && apt-get install -y $*"
        exit 1
    fi
    if [ "$apt_updated" -eq 0 ]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    say "apt-get install -y $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# 1. Chromium (Debian package; Playwright's own browser download is never used).
if [ -x "$CHROMIUM" ]; then
    say "chromium present: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
else
    apt_install chromium chromium-driver fonts-dejavu-core
fi

# 1b. hledger for the Ledger export test (Debian's package).
if command -v hledger >/dev/null 2>&1; then
    say "hledger present: $(hledger --version 2>/dev/null | head -n1)"
else
    apt_install hledger
fi

# 2. The venv.
if [ ! -x "$VENV/bin/python" ]; then
    say "creating venv at $VENV with $PYTHON"
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        rm -rf "$VENV"
        if as_root true; then
            apt_install python3-venv
            "$PYTHON" -m venv "$VENV"
        else
            say "'$PYTHON -m venv' failed: install python3-venv (Debian) and retry"
            exit 1
        fi
    fi
fi

# 3. Pinned packages; the stamp records exactly what was installed.
STAMP="$VENV/.test-deps-installed"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$REQUIREMENTS" ]; then
    say "python packages up to date in $VENV"
else
    say "installing into $VENV: $(echo "$REQUIREMENTS" | tr '\n' ' ')"
    REQ_FILE="$(mktemp)"
    trap 'rm -f "$REQ_FILE"' EXIT
    printf '%s\n' "$REQUIREMENTS" >"$REQ_FILE"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ_FILE"
    printf '%s' "$REQUIREMENTS" >"$STAMP"
    # The spec cache is keyed on the spec file, but a validator upgrade should rebuild it too.
    rm -f "$VENV"/plaid-openapi-*.pickle
fi

say "ready: venv $VENV, browser $CHROMIUM, hledger $(command -v hledger)"
