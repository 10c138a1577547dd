#!/usr/bin/env bash
# The test suite: lint (Ruff, with Airflow's AIR rules), then unit, contract replay, hook and end-to-end
# DAG runs on SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
