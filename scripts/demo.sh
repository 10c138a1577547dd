#!/usr/bin/env bash
# The demo sync on the embedded defaults: SQLite PSIber, a local Moodle stand-in, the demo integration.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh
exec .venv/bin/python scripts/demo.py "$@"
