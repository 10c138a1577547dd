"""The demo integration's DAG run for real with dag.test(), on SQLite and on PostgreSQL.

Each backend gets a PSIber database of its own (PostgreSQL: created and dropped by the test),
the demo company, and a fresh Moodle stand-in.
"""

from __future__ import annotations

import json
import secrets
import stat
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from factories import demo_connections
from moodle_stand_in import MoodleStandIn
from moodle_stand_in.demo_site import DAY, add_demo_courses, simulate_learning
from psiber.demo_company import HAND_MADE_MOODLE_USER, seed_demo_company

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "psiber_moodle_driver_training"


@pytest.fixture
def demo_run(airflow_db, psiber, tmp_path, monkeypatch):
    """Runs the demo DAG once per call and returns the run's summary."""
    engine, connection = psiber
    seed_demo_company(engine, employees=120)
    token = secrets.token_hex(16)
    moodle = MoodleStandIn(token).start()
    moodle.add_user(**HAND_MADE_MOODLE_USER)
    demo_connections(monkeypatch, moodle.base_url, token, tmp_path / "runs", psiber_demo=connection)
    monkeypatch.setenv("PSIBER_MOODLE_INTEGRATIONS", str(ROOT / "include" / "integrations"))
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags[DAG_ID]

    def run(**conf) -> dict:
        dag_run = dag.test(run_conf=conf or None)
        [path] = (tmp_path / "runs").glob(f"*/{dag_run.run_id.replace(':', '_').replace('+', '_')}/summary.json")
        summary = json.loads(path.read_text())
        summary["state"] = str(dag_run.state)
        return summary

    run.moodle, run.engine = moodle, engine
    yield run
    moodle.stop()


def by_number(summary: dict, action: str, flow: str = "users") -> dict[str, str]:
    return {o["record"]: o["reason"] for o in summary["outcomes"] if o["action"] == action and o["flow"] == flow}


def moodle_user(moodle: MoodleStandIn, idnumber: str) -> dict:
    [user] = [u for u in moodle.users.values() if u.get("idnumber") == idnumber]
    return user


def test_first_run_creates_second_changes_nothing_then_rename_and_termination_follow(demo_run):
    first = demo_run()
    counts = first["counts"]["users"]
    assert first["state"] == "success" and first["complete"]
    assert counts["created"] > 80
    employees_with_users = counts["created"]
    links = demo_run.engine.connect().execute(text("SELECT COUNT(*) FROM moodle_user_link")).scalar_one()
    assert links == employees_with_users
    invalid = by_number(first, "invalid")
    assert invalid["EE00013"] == "e-mail address is malformed (Moodle would refuse it)"
    assert invalid["EE00015"] == "no e-mail and no ID/passport number, so no pseudo e-mail can be made"
    assert invalid["EE00016"] == "surname is missing"
    conflicts = by_number(first, "conflict")
    assert set(conflicts) == {"EE00011", "EE00014", "EE00020"}
    assert "already used by Moodle user" in conflicts["EE00020"]
    assert "employment_type value is not an option" in by_number(first, "warning")["EE00018"]
    assert moodle_user(demo_run.moodle, "cc220")["email"] == "a011455cc220@jhb.com"
    assert counts["skipped"] > 0  # terminated employees who never had a Moodle account

    second = demo_run()
    assert second["state"] == "success"
    assert {k: second["counts"]["users"][k] for k in ("created", "updated", "suspended", "unsuspended", "failed")} == \
        {"created": 0, "updated": 0, "suspended": 0, "unsuspended": 0, "failed": 0}
    assert second["counts"]["users"]["unchanged"] == employees_with_users
    assert len(demo_run.moodle.users) == employees_with_users + 3  # plus admin, guest and the hand-made user

    renamed, terminated = sorted(by_number(first, "created"))[:2]
    with demo_run.engine.begin() as connection:
        connection.execute(text("UPDATE employee SET surname = 'Renamed' WHERE employee_number = :number"),
                           {"number": renamed})
        connection.execute(text("UPDATE employee SET employment_status = 'Terminated' "
                                "WHERE employee_number = :number"), {"number": terminated})
    third = demo_run()
    assert by_number(third, "updated") == {renamed: "changed: lastname"}
    assert set(by_number(third, "suspended")) == {terminated}
    assert moodle_user(demo_run.moodle, renamed)["lastname"] == "Renamed"
    assert moodle_user(demo_run.moodle, terminated)["suspended"] in (True, 1)
    assert third["counts"]["users"]["created"] == 0


def test_an_emptied_payroll_extract_trips_the_suspend_guard_before_any_write(demo_run):
    assert demo_run()["complete"]
    with demo_run.engine.begin() as connection:
        connection.execute(text("UPDATE employee SET employment_status = 'Terminated'"))
    writes_before = sum(1 for name, _ in demo_run.moodle.calls if name == "core_user_update_users")
    blocked = demo_run()
    assert blocked["state"] == "failed" and not blocked["complete"]
    assert "plan_user_changes" in blocked["unfinished_tasks"]
    assert sum(1 for name, _ in demo_run.moodle.calls if name == "core_user_update_users") == writes_before
    assert not any(u.get("suspended") for u in demo_run.moodle.users.values())

    allowed = demo_run(allow_mass_suspension=True)
    assert allowed["complete"] and allowed["counts"]["users"]["suspended"] > 50


def count(engine, query: str, **params) -> int:
    with engine.connect() as connection:
        return connection.execute(text(query), params).scalar_one()


def test_courses_and_results_flow_into_psiber_once_and_follow_changes(demo_run, tmp_path):
    moodle, engine = demo_run.moodle, demo_run.engine
    now = int(time.time())
    course_ids = add_demo_courses(moodle, start=now - 60 * DAY)
    with engine.begin() as connection:  # a result captured by hand in PSIber, and a hand-made course
        connection.execute(text("INSERT INTO course (course_code, description, status, source, updated_at) "
                                "VALUES ('HR-MANUAL', 'Captured by HR', 'Active', 'psiber', CURRENT_TIMESTAMP)"))
        connection.execute(text("INSERT INTO course_attempt (attempt_key, employee_id, course_code, attempt_date, "
                                "result, source, recorded_at) VALUES ('manual-1', 1, 'HR-MANUAL', '2026-01-05', "
                                "'Competent', 'psiber', CURRENT_TIMESTAMP)"))

    first = demo_run()
    assert first["complete"]
    courses = first["counts"]["courses"]
    assert (courses["in_moodle"], courses["created"]) == (7, 7)
    assert by_number(first, "warning", "courses")["ONB-1"].startswith("Course completion criteria not defined")
    status = dict(engine.connect().execute(text("SELECT course_code, status FROM course")).all())
    assert status["DRV-OLD"] == "Inactive" and status["DRV-101"] == "Active" and status["DG-TRANSPORT"] == "Active"
    row = engine.connect().execute(text("SELECT saqa_id, nqf_recognised, min_pass_rate, nqf_level, course_level "
                                        "FROM course WHERE course_code = 'DRV-201'")).one()
    assert tuple(row[:2]) == ("123259", 1) and float(row[2]) == 75.0 and tuple(row[3:]) == ("NQF 4", "Intermediate")
    assert count(engine, "SELECT COUNT(*) FROM picklist_item WHERE picklist = 'course_category' "
                         "AND item_value = 'Onboarding'") == 1
    assert first["counts"]["results"]["new_attempts"] == 0

    simulate_learning(moodle, course_ids, now=now)
    second = demo_run()
    recorded = second["counts"]["results"]["new_attempts"]
    assert second["complete"] and recorded > 50
    assert count(engine, "SELECT COUNT(*) FROM course_attempt WHERE source = 'moodle'") == recorded
    assert count(engine, "SELECT COUNT(*) FROM course_attempt WHERE result = 'Not Yet Competent'") > 0
    assert count(engine, "SELECT COUNT(*) FROM course_completion") == recorded
    # summarize_run merges what the results flow read into the course status
    assert count(engine, "SELECT COUNT(*) FROM sync_course_learner WHERE passed = 1") > 0
    integration_folder = tmp_path / "runs" / "driver_training"  # run data holds personal data: owner-only
    made = [integration_folder, *integration_folder.rglob("*")]
    assert {"grades", "completions", "moodle_calls"} <= {path.name for path in made}
    assert {oct(stat.S_IMODE(path.stat().st_mode)) for path in made if path.is_dir()} == {"0o700"}
    assert {oct(stat.S_IMODE(path.stat().st_mode)) for path in made if path.is_file()} == {"0o600"}

    third = demo_run(full_results_sync=True)
    assert third["counts"]["results"]["new_attempts"] == 0
    assert third["counts"]["results"]["already_recorded"] == recorded
    assert count(engine, "SELECT COUNT(*) FROM course_attempt WHERE source = 'moodle'") == recorded

    [(user_id, course_code, grade)] = engine.connect().execute(text(
        "SELECT l.moodle_user_id, a.course_code, a.grade FROM course_attempt a JOIN moodle_user_link l "
        "ON l.employee_id = a.employee_id WHERE a.result = 'Competent' AND a.grade IS NOT NULL "
        "ORDER BY a.attempt_key LIMIT 1")).all()
    moodle.set_grade(course_ids[course_code], user_id, float(grade) - 1, dategraded=int(time.time()))
    moodle.update_course(course_ids["HS-102"], visible=0)
    moodle.delete_course(course_ids["DG-TRANSPORT"])
    fourth = demo_run(full_results_sync=False)  # dag.test() keeps the last run's params otherwise
    assert fourth["counts"]["results"]["new_attempts"] == 1
    assert by_number(fourth, "updated", "courses") == {"HS-102": "changed: status"}
    assert by_number(fourth, "deactivated", "courses") == {"DG-TRANSPORT": "no longer in Moodle"}
    status = dict(engine.connect().execute(text("SELECT course_code, status FROM course")).all())
    assert status["HS-102"] == status["DG-TRANSPORT"] == "Inactive"
    assert count(engine, "SELECT COUNT(*) FROM course WHERE course_code = 'DG-TRANSPORT'") == 1

    manual = engine.connect().execute(text("SELECT result, attempt_date FROM course_attempt "
                                           "WHERE attempt_key = 'manual-1'")).one()
    assert manual[0] == "Competent" and str(manual[1]).startswith("2026-01-05")
    assert not any(name.startswith("core_course_create") for name, _ in moodle.calls)
