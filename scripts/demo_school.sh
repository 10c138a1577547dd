#!/usr/bin/env bash
# The school MIS → Moodle demo on the embedded defaults: SQLite school MIS, a local Moodle stand-in, Greenfield High.
# Options: --rollover (roll the MIS over, preview), --preview, --allow-deletions, --allow-mass-changes, --reset.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh
exec .venv/bin/python scripts/demo_school.py "$@"
