#!/usr/bin/env bash
# The test suite: lint (Ruff, with Airflow's AIR rules), the type check of plugins/ and dags/ (mypy, mypy.ini), then
# every tier of tests (markers, see tests/conftest.py): the fast tier (unit, plan, step, contract replay and hook
# tests), e2e (DAG runs with dag.test() on SQLite and PostgreSQL, multi-night fault runs), scheduler (Airflow's own
# scheduler with Celery workers) and browser (the sync report in Airflow's UI, in chromium). CI runs this command
# (.ci/run).
#   scripts/test.sh --fast   lint, type check and the fast tier only (2 min 45 s on a 2-core machine in use by other
#                            work), no chromium
#   scripts/test.sh -m e2e   one tier; any other arguments go to pytest as they are
set -euo pipefail
cd "$(dirname "$0")/.."
tiers=""  # every tier
if [ "${1:-}" = "--fast" ]; then
  shift
  tiers="not e2e and not scheduler and not browser"
fi
scripts/setup_env.sh
if [ -z "$tiers" ] && [ ! -x /usr/bin/chromium ]; then  # the browser test drives Debian's chromium (Playwright downloads no browser)
  echo "Installing Debian's chromium for the browser test (first time only) ..."
  sudo=$([ "$(id -u)" -eq 0 ] || echo sudo)
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
fi
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/python -m pytest -m "$tiers" "$@"
