"""Run the HR export file demo integration's DAG (include/integrations/hr_file/demo_hr_export.yaml) through
Airflow on the embedded defaults and print what it did: the demo export include/hr_file/demo_export.csv (or
another file given with --export), a SQLite state database and a local Moodle stand-in.

State lives in .demo/hr_file/ (the state database, the Moodle stand-in's users) and the Airflow metadata next to
the PSIber demo's, so a second run shows what a nightly run does when the export did not change. Edit a copy of
the export and pass it with --export to see an update, a leaver or a bad file. --reset starts again from an empty
Moodle.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from demo import DEMO, ROOT, configure_airflow, connect, run_and_report

HR_DEMO = DEMO / "hr_file"
DAG_ID = "hr_file_moodle_demo_hr_export"
INTEGRATION = ROOT / "include" / "integrations" / "hr_file" / "demo_hr_export.yaml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reset", action="store_true", help="forget the demo's Moodle users and state database")
    parser.add_argument("--export", type=Path, help="an export file to read instead of the demo's")
    args = parser.parse_args()
    if args.reset:
        shutil.rmtree(HR_DEMO, ignore_errors=True)
    HR_DEMO.mkdir(parents=True, exist_ok=True)
    configure_airflow()
    integrations = HR_DEMO / "integrations"
    integrations.mkdir(exist_ok=True)
    settings = INTEGRATION.read_text(encoding="utf-8")
    if args.export:
        settings = settings.replace("hr_file/demo_export.csv", str(args.export.resolve()))
    (integrations / INTEGRATION.name).write_text(settings, encoding="utf-8")
    os.environ["HR_FILE_MOODLE_INTEGRATIONS"] = str(integrations)
    os.environ["AIRFLOW_CONN_HR_FILE_DEMO"] = json.dumps({"conn_type": "sqlite", "host": str(HR_DEMO / "state.db")})
    if not (DEMO / "airflow" / "airflow.db").exists():
        print("Creating the Airflow metadata database (first run only) ...")
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True,
                       stdout=subprocess.DEVNULL)

    from airflow.dag_processing.dagbag import DagBag

    from moodle_stand_in import MoodleStandIn

    token = secrets.token_hex(16)
    with MoodleStandIn(token, state_path=HR_DEMO / "moodle-stand-in.json") as moodle:
        connect(moodle.base_url, token)
        bag = DagBag(dag_folder=str(ROOT / "dags" / "hr_file_moodle_sync.py"))
        if bag.import_errors:
            print(f"DAG import errors: {bag.import_errors}")
            return 1
        return 0 if run_and_report(bag.dags[DAG_ID], moodle) else 1


if __name__ == "__main__":
    sys.exit(main())
