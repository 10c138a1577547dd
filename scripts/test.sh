#!/usr/bin/env bash
# The test suite: unit, contract replay, hook, and end-to-end DAG runs on SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh
exec .venv/bin/python -m pytest "$@"
