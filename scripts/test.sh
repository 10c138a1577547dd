#!/usr/bin/env bash
# The test suite: lint (Ruff, with Airflow's AIR rules), then unit, contract replay, hook and end-to-end
# DAG runs on SQLite and PostgreSQL, and the browser test of the sync report in Airflow's UI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh
if [ ! -x /usr/bin/chromium ]; then  # the browser test drives Debian's chromium (Playwright downloads no browser)
  echo "Installing Debian's chromium for the browser test (first time only) ..."
  sudo=$([ "$(id -u)" -eq 0 ] || echo sudo)
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
fi
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
