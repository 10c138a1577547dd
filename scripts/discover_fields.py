"""List Moodle's user profile fields and course custom fields, show which an integration matches,
and print a ready-to-paste config block for the unmatched ones.

    .venv/bin/python scripts/discover_fields.py include/integrations/<name>.yaml

The Moodle connection named in the file must be known to Airflow here (metadata database,
secrets backend, or an AIRFLOW_CONN_<ID> variable).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins")]

from moodle_provider.hooks.moodle import MoodleHook  # noqa: E402
from psiber.config import load_integration  # noqa: E402
from psiber.field_discovery import (  # noqa: E402
    field_matches,
    read_course_fields,
    read_user_fields,
    render_field_report,
)


def field_report(integration_file: Path, hook: MoodleHook | None = None) -> str:
    integration = load_integration(integration_file)
    hook = hook or MoodleHook(integration.moodle_conn_id)
    user_fields, note = read_user_fields(hook)
    course_fields = read_course_fields(hook.call("core_course_get_courses"))
    return render_field_report(field_matches(user_fields, course_fields, integration), note)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("integration_file", type=Path)
    print(field_report(parser.parse_args().integration_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
