#!/usr/bin/env bash
# The whole test suite, on real PostgreSQL and Redis (throwaway ones when DATABASE_URL/REDIS_URL
# are unset) and real Chromium. Fails if any test is skipped: a skipped test did not run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's Chromium for the browser tests; Playwright must never download its own.
if ! command -v chromium >/dev/null 2>&1; then
  echo "test.sh: installing Debian's chromium for the browser tests" >&2
  apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

# Debian's promtool and amtool check monitoring/ (tests/monitoring). The packages' init scripts
# may start the servers; stop those so nothing stays bound to :9090 or :9093.
if ! command -v promtool >/dev/null 2>&1 || ! command -v amtool >/dev/null 2>&1; then
  echo "test.sh: installing Debian's prometheus and prometheus-alertmanager for the monitoring tests" >&2
  apt-get install -y --no-install-recommends prometheus prometheus-alertmanager >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends prometheus prometheus-alertmanager >/dev/null; }
  service prometheus stop >/dev/null 2>&1 || true
  service prometheus-alertmanager stop >/dev/null 2>&1 || true
fi

.venv/bin/ruff check .
# In parallel (pytest-xdist): TEST_WORKERS processes (3 on 2 cores: many tests wait on workers, servers
# and Chromium), each with its own test database, Redis database and var directory (tests/testenv.py).
# TEST_WORKERS=0 runs everything in one process.
exec scripts/with-services.sh .venv/bin/python -m pytest -n "${TEST_WORKERS:-3}" --durations=30 "$@"
