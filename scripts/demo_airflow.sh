#!/usr/bin/env bash
# The demo where support works: the Moodle stand-in and Airflow (UI, scheduler, DAG processor, triggerer)
# on http://localhost:8080 (--port to change it); prints how to log in. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh
exec .venv/bin/python scripts/demo_airflow.py "$@"
