#!/usr/bin/env bash
# The HR export file demo: the demo export (CSV), a SQLite state database, a local Moodle stand-in.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh
exec .venv/bin/python scripts/demo_hr_file.py "$@"
