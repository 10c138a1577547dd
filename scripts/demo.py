"""Run the demo integration's DAG through Airflow on the embedded defaults and print what it did.

State lives in .demo/ (Airflow metadata, the PSIber SQLite database, the Moodle stand-in's
users), so a second run shows what a nightly run does when nothing changed.
Use --reset to start again from an empty Moodle and a freshly seeded PSIber.
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

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / ".demo"
DAG_ID = "psiber_moodle_driver_training"
ESS_REQUEST_OUTCOMES = ("enrolled", "refused", "awaiting_approval")


def configure_airflow() -> None:
    os.environ.update({
        "AIRFLOW_HOME": str(DEMO / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{DEMO / 'airflow' / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",  # the run summary is printed below
        "MOODLE_SYNC_DATA_DIR": str(DEMO / "runs"),
        "PSIBER_MOODLE_INTEGRATIONS": str(ROOT / "include" / "integrations"),
        "MOODLE_SYNC_TASK_RETRIES": "0",
    })
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "dags")]


def connect(moodle_url: str, token: str) -> None:
    """Airflow Connections from the environment: secrets exist only in this process."""
    os.environ["AIRFLOW_CONN_MOODLE_DEMO"] = json.dumps({"conn_type": "moodle", "host": moodle_url, "password": token})
    os.environ["AIRFLOW_CONN_PSIBER_DEMO"] = json.dumps({"conn_type": "sqlite", "host": str(DEMO / "psiber.db")})
    os.environ["AIRFLOW_CONN_MOODLE_DEMO_INITIAL_PASSWORD"] = json.dumps(
        {"conn_type": "generic", "password": f"Demo-{secrets.token_urlsafe(9)}1!"})


def print_summary(summary: dict, moodle_calls: int, seconds: float) -> None:
    from sync_common.run_summary import is_problem

    print(f"\nRun {summary['run_id']} of '{summary['integration']}': "
          f"{'complete' if summary['complete'] else 'INCOMPLETE: failed ' + ', '.join(summary['failed_tasks'])}")
    for flow, counts in summary["counts"].items():
        print(f"  {flow:8} " + ", ".join(f"{name} {value}" for name, value in counts.items()))
    problems = [o for o in summary["outcomes"] if is_problem(o["action"])]
    for outcome in problems:
        print(f"  - {outcome['flow']}: {outcome['record']}: {outcome['action']}: {outcome['reason']}"
              f" (owner: {outcome['owner'] or 'n/a'})")
    for outcome in (o for o in summary["outcomes"] if o["flow"] == "ess" and o["action"] in ESS_REQUEST_OUTCOMES):
        print(f"  - ESS request of {outcome['record']}: {outcome['action']}: {outcome['reason']}")
    print(f"  Moodle web-service calls: {moodle_calls}; wall time of the DAG run: {seconds:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reset", action="store_true", help="forget the demo's Moodle users and PSIber data")
    args = parser.parse_args()
    if args.reset:  # the UI demo (.demo/airflow-ui, scripts/demo_airflow.py) keeps its own state
        for path in DEMO.glob("*"):
            if path.name != "airflow-ui":
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
    DEMO.mkdir(exist_ok=True)
    configure_airflow()
    if not (DEMO / "airflow" / "airflow.db").exists():
        print("Creating the Airflow metadata database (first run only) ...")
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True,
                       stdout=subprocess.DEVNULL)

    from sqlalchemy import create_engine

    from moodle_stand_in import MoodleStandIn
    from moodle_stand_in.demo_ess import add_demo_assessments
    from moodle_stand_in.demo_site import add_demo_courses, simulate_learning
    from psiber.demo_company import HAND_MADE_MOODLE_USER, file_demo_ess_requests, seed_demo_company

    psiber = create_engine(f"sqlite:///{DEMO / 'psiber.db'}")
    if seed_demo_company(psiber):
        print("Seeded the demo PSIber company into .demo/psiber.db")
    token = secrets.token_hex(16)
    with MoodleStandIn(token, state_path=DEMO / "moodle-stand-in.json") as moodle:
        connect(moodle.base_url, token)
        first_time = not any(course["shortname"] == "DRV-101" for course in moodle.courses.values())
        if first_time:
            moodle.add_user(**HAND_MADE_MOODLE_USER)
            course_ids = add_demo_courses(moodle, start=int(time.time()) - 60 * 86_400)
            activities = add_demo_assessments(moodle, course_ids, int(time.time()))
            requests = file_demo_ess_requests(psiber, DAG_ID.removeprefix("psiber_moodle_"), course_ids)
            print(f"Moodle stand-in: {len(course_ids)} courses set up by the 'Moodle administrator', with "
                  f"{activities} assignments and quizzes; ESS: {requests} enrolment requests filed by employees")
        dag = load_demo_dag()
        if dag is None:
            return 1
        complete = run_and_report(dag, moodle)
        if first_time and complete:
            enrolments = simulate_learning(moodle, course_ids, now=int(time.time()))
            print(f"\nLearners studied in Moodle: {enrolments} enrolments, with grades and completions. "
                  "The next night's run:")
            complete = run_and_report(dag, moodle)
    return 0 if complete else 1


def load_demo_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    if bag.import_errors:
        print(f"DAG import errors: {bag.import_errors}")
        return None
    return bag.dags[DAG_ID]


def run_and_report(dag, moodle) -> bool:
    calls_before = len(moodle.calls)
    started = time.monotonic()
    dag_run = dag.test()
    seconds = time.monotonic() - started
    [path] = (DEMO / "runs").glob(f"*/{re.sub(r'[^A-Za-z0-9_.-]+', '_', dag_run.run_id)}/summary.json")
    summary = json.loads(path.read_text())
    print_summary(summary, len(moodle.calls) - calls_before, seconds)
    return summary["complete"]


if __name__ == "__main__":
    sys.exit(main())
