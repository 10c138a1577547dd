"""How many Moodle calls a nightly run makes, against the naive per-user-per-course way.

A site of 1,000 employees (all linked) × 50 courses, each employee enrolled in 5 courses with
results already in PSIber; then, during the day, 5% of the employees are active (new grades,
completions). The DAG runs with dag.test() against the Moodle stand-in and SQLite, and the
calls of the nightly run are counted per web-service function.

    .venv/bin/python benchmarks/nightly_moodle_calls.py [--employees 1000] [--courses 50] [--active 0.05]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAY = 86_400


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--employees", type=int, default=1000)
    parser.add_argument("--courses", type=int, default=50)
    parser.add_argument("--active", type=float, default=0.05)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="psiber-moodle-bench-"))
    os.environ.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR", "PSIBER_MOODLE_TASK_RETRIES": "0",
        "PSIBER_MOODLE_DATA_DIR": str(home / "runs"),
        "PSIBER_MOODLE_INTEGRATIONS": str(ROOT / "include" / "integrations"),
    })
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "dags")]
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True,
                   stdout=subprocess.DEVNULL)

    from airflow.dag_processing.dagbag import DagBag
    from sqlalchemy import create_engine, text

    from moodle_stand_in import MoodleStandIn
    from psiber.demo_company import seed_demo_company

    engine = create_engine(f"sqlite:///{home / 'psiber.db'}")
    seed_demo_company(engine, employees=round(args.employees / 0.8))  # the demo integration covers 8 of 10 payrolls
    with engine.begin() as connection:
        connection.execute(text("UPDATE employee SET employment_status = 'Active'"))
    token = secrets.token_hex(16)
    rng = random.Random(1)
    with MoodleStandIn(token) as moodle:
        os.environ["AIRFLOW_CONN_MOODLE_DEMO"] = json.dumps({"conn_type": "http", "host": moodle.base_url,
                                                             "password": token})
        os.environ["AIRFLOW_CONN_PSIBER_DEMO"] = json.dumps({"conn_type": "sqlite", "host": str(home / "psiber.db")})
        os.environ["AIRFLOW_CONN_MOODLE_DEMO_INITIAL_PASSWORD"] = json.dumps({"conn_type": "generic",
                                                                             "password": "Bench-Pa55word!"})
        category = moodle.add_category("Driver Training")["id"]
        course_ids = [moodle.add_course(f"C{n:03d}", categoryid=category, idnumber=f"C{n:03d}",
                                        startdate=int(time.time()) - 90 * DAY,
                                        customfields={"passrate": "60"})["id"] for n in range(args.courses)]
        dag = DagBag(dag_folder=str(ROOT / "dags")).dags["psiber_moodle_driver_training"]

        def run(label: str, **conf) -> None:
            before = len(moodle.calls)
            started = time.monotonic()
            dag_run = dag.test(run_conf=conf or None)
            calls = Counter(name for name, _ in moodle.calls[before:])
            print(f"{label}: {dag_run.state}, {sum(calls.values())} Moodle calls in {time.monotonic() - started:.1f} s")
            for name, number in sorted(calls.items()):
                print(f"    {number:6d}  {name}")

        run("first run (creates users and courses)")
        learners = [u for u in moodle.users.values() if u.get("idnumber")]
        long_ago = int(time.time()) - 3 * DAY
        for user in learners:
            for course_id in rng.sample(course_ids, 5):
                moodle.enrol(user["id"], course_id)
                moodle.set_grade(course_id, user["id"], float(rng.randint(30, 100)), dategraded=long_ago)
                moodle.complete(course_id, user["id"], timecompleted=long_ago)
            moodle.touch(user["id"], long_ago)
        run("initial results load", full_results_sync=True)
        with engine.begin() as connection:  # the next night: the last sync was two days ago
            connection.execute(text("UPDATE sync_watermark SET synced_until = :t"), {"t": long_ago + DAY})
        now = int(time.time())
        active = rng.sample(learners, round(len(learners) * args.active))
        for user in active:
            course_id = rng.choice(course_ids)
            moodle.enrol(user["id"], course_id)
            moodle.set_grade(course_id, user["id"], float(rng.randint(30, 100)), dategraded=now - 600)
            moodle.complete(course_id, user["id"], timecompleted=now - 600)
            moodle.touch(user["id"], now - 600)
        run(f"nightly run ({len(active)} of {len(learners)} employees active)", full_results_sync=False)
        naive = 2 * len(learners) * args.courses
        print(f"naive results read: {naive} calls (completion status + grade items per user per course)")


if __name__ == "__main__":
    main()
