"""Run the demo school's provisioning DAG (Greenfield High) on the embedded defaults and print what it did, and walk
through the rollover guide: roll the MIS over, preview with synchronisation disabled, apply with nothing deleted,
then allow deletions.

State lives in .demo/ (school.db, the school's Moodle stand-in, Airflow's metadata shared with scripts/demo.py), so
a second run shows what a nightly run does when nothing changed. The integration file used is a copy of
include/integrations/school/greenfield_high.yaml in .demo/school_integrations/, changed only as the options say.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from demo import DEMO, ROOT, configure_airflow, print_summary

DAG_ID = "school_moodle_greenfield_high"
SCHOOL_FILE = ROOT / "include" / "integrations" / "school" / "greenfield_high.yaml"
STATE = ("school.db", "moodle-school-stand-in.json", "school_integrations", "school-rollover-done")


def integration_file(disabled: bool, deletions: bool) -> Path:
    """The demo's copy of the school's settings, as the guide's steps have them."""
    settings = yaml.safe_load(SCHOOL_FILE.read_text(encoding="utf-8"))
    if disabled:
        settings["synchronisation"] = "disabled"
    if deletions:
        settings["deletion"] = {"users": True, "enrolments": True, "courses": "delete"}
    folder = DEMO / "school_integrations"
    folder.mkdir(exist_ok=True)
    (folder / SCHOOL_FILE.name).write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return folder


def print_preview(summary: dict, shown: int = 12) -> None:
    would = [o for o in summary["outcomes"] if o["action"].startswith("would_")]
    print(f"  Preview: nothing was written to Moodle; the next run would make {len(would)} changes"
          + (", deletions first:" if would else "."))
    for outcome in would[:shown]:
        print(f"    {outcome['action']:18} {outcome['flow']:10} {outcome['record']}: {outcome['reason']}")
    if len(would) > shown:
        print(f"    ... and {len(would) - shown} more (the run's summary.json and sync report list them all)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rollover", action="store_true",
                        help="roll the MIS over to the next academic year first (once), then preview with "
                             "synchronisation disabled, as the guide says")
    parser.add_argument("--preview", action="store_true", help="plan everything, write nothing to Moodle")
    parser.add_argument("--allow-deletions", action="store_true",
                        help="allow deletion of users, enrolments and courses (the guide's last step)")
    parser.add_argument("--allow-mass-changes", action="store_true", help="let the run pass the mass-change guard")
    parser.add_argument("--reset", action="store_true", help="forget the demo school and its Moodle")
    args = parser.parse_args()
    DEMO.mkdir(exist_ok=True)
    if args.reset:
        for name in STATE:
            target = DEMO / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    configure_airflow()
    if not (DEMO / "airflow" / "airflow.db").exists():
        print("Creating the Airflow metadata database (first run only) ...")
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True,
                       stdout=subprocess.DEVNULL)

    from sqlalchemy import create_engine

    from moodle_stand_in import MoodleStandIn
    from school.demo_school import roll_over, seed_demo_school, set_up_moodle

    engine = create_engine(f"sqlite:///{DEMO / 'school.db'}")
    if seed_demo_school(engine):
        print("Seeded the demo school (Greenfield High) into .demo/school.db")
    preview = args.preview or args.rollover  # synchronisation is disabled during a rollover: previews only
    if args.rollover and not (DEMO / "school-rollover-done").exists():
        changed = roll_over(engine)
        (DEMO / "school-rollover-done").touch()
        print(f"Rolled the MIS over to the next academic year: {len(changed['left'])} people left, "
              f"{len(changed['new'])} new students, every class replaced. Synchronisation disabled; previewing.")
    folder = integration_file(disabled=args.rollover, deletions=args.allow_deletions)
    os.environ["SCHOOL_MOODLE_INTEGRATIONS"] = str(folder)
    token = secrets.token_hex(16)
    with MoodleStandIn(token, state_path=DEMO / "moodle-school-stand-in.json") as moodle:
        if not any(category.get("idnumber") == "GFH" for category in moodle.categories.values()):
            set_up_moodle(moodle)
            print("Moodle stand-in: course categories, two hand-made accounts and the web-service user set up")
        else:
            moodle.set_token_user(next(u["id"] for u in moodle.users.values() if u["username"] == "schoolws"))
        os.environ["AIRFLOW_CONN_MOODLE_DEMO"] = json.dumps({"conn_type": "moodle", "host": moodle.base_url,
                                                              "password": token})
        os.environ["AIRFLOW_CONN_SCHOOL_DEMO"] = json.dumps({"conn_type": "sqlite",
                                                              "host": str(DEMO / "school.db")})
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(ROOT / "dags" / "school_moodle_sync.py"))
        if bag.import_errors:
            print(f"DAG import errors: {bag.import_errors}")
            return 1
        calls_before, started = len(moodle.calls), time.monotonic()
        dag_run = bag.dags[DAG_ID].test(run_conf={"preview": preview, "allow_mass_changes": args.allow_mass_changes})
        seconds = time.monotonic() - started
        [path] = (DEMO / "runs").glob(f"*/{re.sub(r'[^A-Za-z0-9_.-]+', '_', dag_run.run_id)}/summary.json")
        summary = json.loads(path.read_text())
        print_summary(summary, len(moodle.calls) - calls_before, seconds)
        if preview:
            print_preview(summary)
    return 0 if summary["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
