"""A night that fails, read as support reads it on Airflow's own app: the report starts with why (cause, owner, next
step), for a Moodle site unreachable, in maintenance, refusing the token, and for a tripped guard; and a run cleared
after it failed keeps its history and its first start. Real dag.test() runs of the demo integration against the
Moodle stand-in."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import quote

import pytest
from sqlalchemy import select, text

from moodle_provider.exceptions import OWNER_MOODLE, OWNER_MOODLE_IT
from moodle_provider.hooks.moodle import MoodleHook
from sync_common.run_summary import is_problem
from tests.psiber.test_end_to_end import (
    DAG_ID,
    ROOT,
    demo_run,  # noqa: F401 - the fixture that runs the demo DAG
)
from tests.sync_common.test_report_pages import api, get  # noqa: F401 - Airflow's API app with the plugin

pytestmark = pytest.mark.parametrize("psiber", ["sqlite"], indirect=True)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(MoodleHook, "backoff_seconds", 0.001)  # a fault is asked again at once


def report_of(api, summary: dict) -> str:  # noqa: F811 - api is the imported fixture
    page = get(api, f"/dags/{DAG_ID}/runs/{quote(summary['run_id'], safe='')}", "admin")
    assert page.status_code == 200
    return html.unescape(page.text)


def why(page: str) -> str:
    """The report's first section, why the run failed, as read (markup aside)."""
    section = page[page.index("Why the run failed"):page.index("<h2>Counts</h2>")]
    return " ".join(re.sub(r"<[^>]+>", " ", section).split()).replace(" )", ")").replace("( ", "(")


def moodle_at(monkeypatch, url: str, token: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MOODLE_DEMO", json.dumps({"conn_type": "http", "host": url, "password": token}))


def test_moodle_unreachable_is_named_with_its_owner_and_what_to_do(api, demo_run, monkeypatch):  # noqa: F811
    moodle_at(monkeypatch, "http://127.0.0.1:9", demo_run.moodle.token)  # nothing listens there
    failed = demo_run()
    assert failed["state"] == "failed"
    page = report_of(api, failed)
    said = why(page)
    assert "Moodle unreachable (cannot connect to http://127.0.0.1:9" in said
    assert f"— {OWNER_MOODLE_IT} —" in said and "Clear check_moodle_site once the site answers again" in said
    assert "check_moodle_site: its log" in said
    assert "Not run because a task before them failed:" in said and "extract_moodle_users" in said
    assert said.count(": its log") == 1  # the tasks it stopped share one line
    assert '<span id="state" class="bad">failed</span>' in page and "incomplete" not in page


def test_moodle_in_maintenance_is_named_with_its_owner_and_what_to_do(api, demo_run):  # noqa: F811
    demo_run.moodle.maintenance = "cli"
    said = why(report_of(api, demo_run()))
    assert "Moodle in maintenance mode" in said and f"— {OWNER_MOODLE} —" in said
    assert "Clear check_moodle_site once maintenance mode is off" in said


def test_a_refused_token_is_named_with_its_owner_and_what_to_do(api, demo_run, monkeypatch):  # noqa: F811
    moodle_at(monkeypatch, demo_run.moodle.base_url, "not-the-token")
    said = why(report_of(api, demo_run()))
    assert "Moodle refused the web-service token" in said and f"— {OWNER_MOODLE} —" in said
    assert "put a valid token in the Moodle Connection's Password (Admin > Connections), then Clear " \
           "check_moodle_site" in said
    assert "not-the-token" not in said


def test_a_tripped_guard_is_named_with_its_owner_and_what_to_do(api, demo_run):  # noqa: F811
    night = demo_run()
    assert night["state"] == "success"
    problems = [o for o in night["outcomes"] if is_problem(o["action"])]
    assert {o["flow"] for o in problems} >= {"users", "fields"}
    assert [o for o in problems if not o["owner"]] == []  # every problem has someone to fix it
    with demo_run.engine.begin() as connection:
        connection.execute(text("UPDATE employee SET employment_status = 'Terminated'"))
    said = why(report_of(api, demo_run()))
    assert "Safety guard stopped the run before any write (the plan would suspend" in said
    assert "allow_mass_suspension=true" in said and "— PSIber HR / data engineer —" in said
    assert "plan_user_changes: its log" in said


def test_a_run_cleared_after_it_failed_keeps_its_history_and_first_start(api, demo_run, monkeypatch):  # noqa: F811
    moodle_at(monkeypatch, "http://127.0.0.1:9", demo_run.moodle.token)
    failed = demo_run()
    first = report_of(api, failed)
    started = first[first.index("· started ") + 10:][:19]
    moodle_at(monkeypatch, demo_run.moodle.base_url, demo_run.moodle.token)  # the site is back
    client, tokens = api
    cleared = client.post(f"/api/v2/dags/{DAG_ID}/clearTaskInstances",
                          headers={"Authorization": f"Bearer {tokens['admin']}"},
                          json={"dry_run": False, "dag_run_id": failed["run_id"], "task_ids": ["check_moodle_site"],
                                "include_downstream": True, "only_failed": False})
    assert cleared.status_code == 200 and cleared.json()["total_entries"] > 1, cleared.text
    assert run_cleared(failed["run_id"]) == "success"
    page = report_of(api, failed)
    assert '<span id="state" class="ok">success</span>' in page and "Why the run failed" not in page
    assert f"· started {started}" in page  # the first start, not the Clear's
    history = page[page.index('<ol id="history">'):page.index("</ol>")]
    steps = [line.split(" at ")[0].removeprefix("<li>") for line in history.split("<li>")[1:]]
    assert steps == ["started", "failed", "cleared", "succeeded"]
    assert "failed at" in history and "check_moodle_site: Moodle unreachable — " + OWNER_MOODLE_IT in history
    assert " UTC by admin" in history  # Airflow's audit log says who cleared it


def run_cleared(run_id: str) -> str:
    """What Airflow's scheduler does after a Clear: the run's cleared tasks run again, in the same run (dag.test()
    would make a new run). Returns the run's state."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.settings import Session
    from airflow.utils.state import DagRunState, TaskInstanceState

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags[DAG_ID]
    session = Session()
    session.expire_all()  # dag.test()'s session: what the Clear changed is read again
    run = session.scalar(select(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.run_id == run_id))
    assert run is not None and run.clear_number == 1 and run.state == DagRunState.QUEUED
    run.dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    run.state = DagRunState.RUNNING  # the scheduler starts the queued run
    session.commit()
    while run.state == DagRunState.RUNNING:
        session.expire_all()
        schedulable, _ = run.update_state(session=session, execute_callbacks=False)
        for ti in schedulable:
            ti.try_number += 1
            ti.state = TaskInstanceState.SCHEDULED
        session.commit()
        for ti in run.get_task_instances(session=session):
            if ti.state == TaskInstanceState.SCHEDULED:
                _run_task(ti=ti, task=dag.task_dict[ti.task_id])
    return str(run.state)
