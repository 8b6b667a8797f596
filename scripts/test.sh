#!/usr/bin/env bash
# The one command that runs every test: installs what the tests need outside cargo (a Python venv with Plaid's
# official SDK and an OpenAPI validator, headless Chromium), makes sure PostgreSQL answers, then runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/test-deps.sh

# The PostgreSQL backend is tested over a real connection (127.0.0.1:5432, trust auth, database `test`).
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_ctlcluster >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "test.sh: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi

exec cargo test --workspace --locked "$@"
