#!/usr/bin/env bash
# Creates .venv with the pinned requirements (runtime and development, requirements-dev.txt) and the Moodle
# provider (plugins/moodle, editable); re-installs only when requirements.txt, requirements-dev.txt or
# plugins/moodle/pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
stamp=.venv/.requirements.sha256
wanted=$(cat requirements.txt requirements-dev.txt plugins/moodle/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "Installing the pinned requirements into .venv (first time only) ..."
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt 2> >(grep -v "is ignored: it is neither" >&2)
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e plugins/moodle 2> >(grep -v "is ignored: it is neither" >&2)
  echo "$wanted" > "$stamp"
fi
