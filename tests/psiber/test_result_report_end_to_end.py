"""The demo integration's DAG run for real with dag.test(), its results read from Report Builder reports: the
first results read in pages, a night's grades only for the courses something happened in, a quiet night without
a grade read, and a full read adding nothing."""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from factories import demo_connections
from moodle_stand_in import MoodleStandIn
from moodle_stand_in.demo_site import DAY, add_demo_courses, simulate_learning
from moodle_stand_in.reportbuilder import add_recipe_reports
from psiber.demo_company import HAND_MADE_MOODLE_USER, seed_demo_company

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "psiber_moodle_driver_training"
PER_USER_READS = {"core_enrol_get_users_courses", "core_completion_get_course_completion_status"}


@pytest.fixture
def report_run(airflow_db, psiber, tmp_path, monkeypatch):
    """Runs the demo DAG, its integration file naming the stand-in's recipe reports; the run's summary and the
    Moodle functions it called."""
    engine, connection = psiber
    seed_demo_company(engine, employees=120)
    token = secrets.token_hex(16)
    moodle = MoodleStandIn(token).start()
    moodle.add_user(**HAND_MADE_MOODLE_USER)
    reports = add_recipe_reports(moodle)
    integrations = tmp_path / "integrations"
    integrations.mkdir()
    demo = (ROOT / "include" / "integrations" / "demo.yaml").read_text()
    block = "".join(f"\n  {name}: {report_id}" for name, report_id in reports.items())
    (integrations / "demo.yaml").write_text(f"{demo}\nmoodle_reports:{block}\n")
    demo_connections(monkeypatch, moodle.base_url, token, tmp_path / "runs", psiber_demo=connection)
    monkeypatch.setenv("PSIBER_MOODLE_INTEGRATIONS", str(integrations))
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags[DAG_ID]

    def run(**conf) -> tuple[dict, Counter]:
        start = len(moodle.calls)
        dag_run = dag.test(run_conf=conf or None)
        [path] = (tmp_path / "runs").glob(f"*/{dag_run.run_id.replace(':', '_').replace('+', '_')}/summary.json")
        summary = json.loads(path.read_text())
        summary["state"] = str(dag_run.state)
        return summary, Counter(name for name, _ in moodle.calls[start:])

    run.moodle, run.engine = moodle, engine
    yield run
    moodle.stop()


def attempts(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT COUNT(*) FROM course_attempt WHERE source = 'moodle'")).scalar_one()


def test_results_from_reports_through_the_dag(report_run):
    moodle, engine = report_run.moodle, report_run.engine
    now = int(time.time())
    course_ids = add_demo_courses(moodle, start=now - 60 * DAY)
    first, calls = report_run()
    assert first["state"] == "success" and first["complete"], first.get("failures")
    assert calls["core_reportbuilder_filters_reset"] == 1 and not PER_USER_READS & set(calls)

    simulate_learning(moodle, course_ids, now=now)
    night, calls = report_run()
    recorded = night["counts"]["results"]["new_attempts"]
    assert night["state"] == "success" and night["complete"] and recorded > 50
    assert attempts(engine) == recorded
    assert calls["core_reportbuilder_set_filters"] == 2 and "core_completion_get_course_completion_status" not in calls

    with engine.begin() as connection:  # an hour later: the night's overlap (WATERMARK_OVERLAP_SECONDS) is past
        connection.execute(text("UPDATE sync_watermark SET synced_until = :now WHERE flow = 'results'"),
                           {"now": int(time.time())})
    quiet, calls = report_run()
    assert quiet["complete"] and quiet["counts"]["results"]["new_attempts"] == 0
    assert "gradereport_user_get_grade_items" not in calls and not PER_USER_READS & set(calls)

    full, calls = report_run(full_results_sync=True)
    assert full["complete"] and full["counts"]["results"]["new_attempts"] == 0
    assert full["counts"]["results"]["already_recorded"] == recorded and attempts(engine) == recorded
