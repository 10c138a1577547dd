"""The ESS flow run for real with dag.test(), on SQLite and on PostgreSQL: offers, notifications and enrolment
requests, as an HR administrator would see them in PSIber's ESS tables after each night."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from factories import demo_connections
from moodle_stand_in import MoodleStandIn
from moodle_stand_in.ess import add_activity, update_activity
from psiber.demo_company import seed_demo_company
from sync_common.database import sql

ROOT = Path(__file__).resolve().parents[2]
DAY = 86_400
INTEGRATION = """
name: ESS Test
moodle_conn_id: moodle_demo
psiber_conn_id: psiber_demo
payrolls: [ABG, ADM, AGB, AMD, ASB1, ASB2, ASB3, ASB4]
pass_result: Competent
fail_result: Not Yet Competent
pseudo_email_domain: jhb.com
timezone: Africa/Johannesburg
flows: [users, courses, ess]
users:
  new_user_passwords: {policy: initial_password, connection_id: moodle_demo_initial_password}
safety: {max_invalid_share: 0.5}
ess:
  approval_required: %s
  batch_size: 2
  offers:
    - {categories: [Staff Development], custom_field: offerediness}
"""
OFFERED_IN_ESS = {"shortname": "offerediness", "name": "Offered in ESS", "type": "checkbox"}


def rows(engine, query: str, **params) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(query), params)]


def scalar(engine, query: str, **params):
    with engine.connect() as connection:
        return connection.execute(text(query), params).scalar_one()


@pytest.fixture
def ess_night(airflow_db, psiber, tmp_path, monkeypatch):
    """A factory: ess_night(approval_required) sets up PSIber, Moodle and the integration file and returns a
    function that runs the DAG once (one night) and gives its summary."""
    engine, connection = psiber
    seed_demo_company(engine, employees=40)
    token = secrets.token_hex(16)
    moodle = MoodleStandIn(token).start()
    moodle.course_custom_fields.append(dict(OFFERED_IN_ESS))
    staff = moodle.add_category("Staff Development", idnumber="STAFF-DEV")["id"]
    start = int(time.time()) - 30 * DAY
    courses = {shortname: moodle.add_course(shortname, name, categoryid=staff, idnumber=shortname, startdate=start,
                                            customfields={"offerediness": tick}, **more)["id"]
               for shortname, name, tick, more in (
                   ("ESS-EXCEL", "Excel for Office Staff", "1", {}), ("ESS-POPIA", "POPIA Awareness", "1", {}),
                   ("ESS-LEAD", "Leadership Essentials", "1", {"visible": 0}),
                   ("HR-AUDIT", "Internal Audit Team Training", "0", {}))}
    moodle.set_manual_enrolment(courses["ESS-POPIA"], "absent")
    demo_connections(monkeypatch, moodle.base_url, token, tmp_path / "runs", psiber_demo=connection)
    folder = tmp_path / "integrations"
    folder.mkdir()
    monkeypatch.setenv("PSIBER_MOODLE_INTEGRATIONS", str(folder))

    def make(approval_required: bool):
        (folder / "ess.yaml").write_text(INTEGRATION % str(approval_required).lower())
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(ROOT / "dags"))
        assert not bag.import_errors, bag.import_errors
        dag = bag.dags["psiber_moodle_ess_test"]

        def night() -> dict:
            calls_before = len(moodle.calls)
            dag_run = dag.test()
            [path] = (tmp_path / "runs").glob(f"*/{dag_run.run_id.replace(':', '_').replace('+', '_')}/summary.json")
            summary = json.loads(path.read_text())
            summary["state"] = str(dag_run.state)
            summary["calls"] = [name for name, _ in moodle.calls[calls_before:]]
            return summary

        night.moodle, night.engine, night.courses = moodle, engine, courses
        return night

    yield make
    moodle.stop()


def employees(engine) -> dict[str, list[int]]:
    """Demo employees by kind: active on a covered payroll (not one of the awkward first 20), terminated."""
    found = rows(engine, "SELECT employee_id, employment_status, payroll_code FROM employee ORDER BY employee_id")
    covered = {"ABG", "ADM", "AGB", "AMD", "ASB1", "ASB2", "ASB3", "ASB4"}
    return {"active": [i for i, status, payroll in found if status == "Active" and payroll in covered and i > 20],
            "terminated": [i for i, status, payroll in found if status == "Terminated" and payroll in covered]}


def file_request(engine, employee_id: int, course_id: int, at: str, approved: bool = False) -> None:
    """As ESS files a request (approved already, when PSIber approves before the night)."""
    with engine.begin() as connection:
        connection.execute(text(sql("ess_insert_request")), {
            "integration_name": "ess_test", "employee_id": employee_id, "moodle_course_id": course_id,
            "requested_at": at, "approved_at": at if approved else None})


def requests(engine) -> dict[tuple[int, int], tuple[str, str | None]]:
    return {(e, c): (state, reason) for e, c, state, reason, _ in rows(
        engine, "SELECT employee_id, moodle_course_id, state, reason, decided_at FROM ess_enrolment_request")}


def ess_outcomes(summary: dict, action: str) -> dict[str, str]:
    return {o["record"]: o["reason"] for o in summary["outcomes"] if o["flow"] == "ess" and o["action"] == action}


def test_requests_are_enrolled_or_refused_with_reasons_and_a_second_night_changes_nothing(ess_night):
    night = ess_night(approval_required=False)
    engine, moodle, courses = night.engine, night.moodle, night.courses
    people = employees(engine)
    newcomer, twice, hidden_course, not_ticked, no_manual = people["active"][:5]
    terminated = people["terminated"][0]
    now = int(time.time())
    add_activity(moodle, courses["ESS-EXCEL"], "assign", "Budget spreadsheet", duedate=now + 20 * DAY)
    add_activity(moodle, courses["ESS-EXCEL"], "quiz", "Excel basics quiz", timeopen=now + DAY,
                 timeclose=now + 10 * DAY)
    add_activity(moodle, courses["ESS-EXCEL"], "assign", "Last year's project", duedate=now - 200 * DAY)
    add_activity(moodle, courses["ESS-POPIA"], "quiz", "POPIA check (draft)", visible=0, timeclose=now + 9 * DAY)
    # filed in ESS before the first night: none of these employees has a Moodle account yet
    for employee_id, course in ((newcomer, "ESS-EXCEL"), (twice, "ESS-EXCEL"), (hidden_course, "ESS-LEAD"),
                                (not_ticked, "HR-AUDIT"), (no_manual, "ESS-POPIA"), (16, "ESS-EXCEL"),
                                (terminated, "ESS-EXCEL")):
        file_request(engine, employee_id, courses[course], "2026-11-20 08:00:00")
    file_request(engine, twice, courses["ESS-EXCEL"], "2026-11-20 09:30:00")  # asked twice

    first = night()
    assert first["state"] == "success" and first["complete"], first["unfinished_tasks"]
    decided = requests(engine)
    reasons = {key: reason for key, (_, reason) in decided.items()}
    assert decided[(newcomer, courses["ESS-EXCEL"])] == ("enrolled", "enrolled in Moodle as student")
    assert {state for (e, _), (state, _) in decided.items() if e == twice} == {"enrolled"}
    assert decided[(hidden_course, courses["ESS-LEAD"])][0] == "refused"
    assert reasons[(hidden_course, courses["ESS-LEAD"])].startswith("the course is not offered to you")
    assert reasons[(not_ticked, courses["HR-AUDIT"])].startswith("the course is not offered to you")
    assert reasons[(no_manual, courses["ESS-POPIA"])] == \
        "the course has no manual enrolment method in Moodle (or it is disabled)"
    assert reasons[(16, courses["ESS-EXCEL"])] == ("you have no Moodle account yet (invalid: surname is missing); "
                                                   "ask again once HR has fixed your record")
    assert reasons[(terminated, courses["ESS-EXCEL"])].startswith("you are not an active employee")
    assert scalar(engine, "SELECT COUNT(*) FROM ess_enrolment_request WHERE decided_at IS NULL") == 0
    link = dict(rows(engine, "SELECT employee_id, moodle_user_id FROM moodle_user_link"))
    assert moodle.enrolments[courses["ESS-EXCEL"]][link[newcomer]]["role"] == "student"
    assert set(moodle.enrolments.get(courses["ESS-POPIA"], {})) == set()

    counts = first["counts"]["ess"]
    offered_to = scalar(engine, "SELECT COUNT(DISTINCT employee_id) FROM ess_current_offer")
    assert offered_to >= len(people["active"]) and counts["offered"] == offered_to  # one line per employee
    assert scalar(engine, "SELECT COUNT(*) FROM ess_current_offer") == 2 * offered_to
    assert ess_outcomes(first, "offered")[f"EE{newcomer:05d}"] == \
        "ESS-EXCEL, ESS-POPIA: offered in ESS, the employee notified"
    assert (counts["requested"], counts["enrolled"], counts["refused"]) == (8, 3, 5)
    refused = ess_outcomes(first, "refused")
    assert refused[f"EE{no_manual:05d}"].startswith("ESS-POPIA: the course has no manual enrolment method")
    assert refused["EE00016"].startswith("ESS-EXCEL: you have no Moodle account yet")
    notes = rows(engine, "SELECT employee_id, kind, notification_key, text FROM ess_notification "
                         "WHERE employee_id = :e ORDER BY notification_key", e=newcomer)
    assert [(kind, key) for _, kind, key, _ in notes] == [
        ("enrolment_outcome", f"enrolment_outcome:{courses['ESS-EXCEL']}:2026-11-20 08:00:00"),
        ("new_assessment", "new_assessment:assign:1"), ("new_assessment", "new_assessment:quiz:1"),
        ("new_course", f"new_course:{courses['ESS-EXCEL']}"), ("new_course", f"new_course:{courses['ESS-POPIA']}")]
    assert notes[0][3] == "You are enrolled in Excel for Office Staff (ESS-EXCEL): open it in Moodle."
    assert notes[1][3].startswith("New assignment in Excel for Office Staff: 'Budget spreadsheet', due ")
    [refusal] = rows(engine, "SELECT text FROM ess_notification WHERE employee_id = :e AND kind = 'enrolment_outcome'",
                     e=no_manual)
    assert refusal[0] == ("Your request to enrol in POPIA Awareness (ESS-POPIA) was refused: the course has no "
                          "manual enrolment method in Moodle (or it is disabled).")
    assert counts["notified"] == 2  # newcomer and twice, each told of the two upcoming assessments
    assert scalar(engine, "SELECT COUNT(*) FROM ess_notification WHERE kind = 'new_assessment'") == 2 * 2
    notifications = scalar(engine, "SELECT COUNT(*) FROM ess_notification")

    second = night()
    assert second["complete"]
    assert {key: second["counts"]["ess"][key] for key in ("offered", "notified", "requested", "enrolled", "refused")} \
        == dict.fromkeys(("offered", "notified", "requested", "enrolled", "refused"), 0)
    assert scalar(engine, "SELECT COUNT(*) FROM ess_notification") == notifications
    assert [c for c in second["calls"] if c.startswith(("mod_", "enrol_", "core_enrol_get_enrolled"))] == \
        ["mod_assign_get_assignments", "mod_quiz_get_quizzes_by_courses"]  # a fixed handful, not one per employee

    # the next day: a new quiz, a due date moved, a course hidden, and a third employee asks
    [budget] = [a for a in moodle.courses[courses["ESS-EXCEL"]]["activities"] if a["name"] == "Budget spreadsheet"]
    update_activity(moodle, budget["cmid"], duedate=now + 27 * DAY)
    add_activity(moodle, courses["ESS-EXCEL"], "quiz", "Excel final quiz", timeclose=now + 30 * DAY)
    moodle.update_course(courses["ESS-POPIA"], visible=0)
    late = people["active"][5]
    file_request(engine, late, courses["ESS-EXCEL"], "2026-11-22 10:00:00")
    third = night()
    assert third["complete"]
    assert requests(engine)[(late, courses["ESS-EXCEL"])] == ("enrolled", "enrolled in Moodle as student")
    kinds = dict(rows(engine, "SELECT notification_key, kind FROM ess_notification WHERE employee_id = :e", e=late))
    assert kinds["new_assessment:quiz:3"] == "new_assessment"
    assert "new_assessment:assign:1" not in kinds  # announced before this employee was a student
    assert kinds[f"assessment_changed:assign:1:{now + 27 * DAY}"] == "assessment_changed"
    assert scalar(engine, "SELECT COUNT(*) FROM ess_current_offer WHERE moodle_course_id = :c",
                  c=courses["ESS-POPIA"]) == 0
    assert third["counts"]["ess"]["withdrawn"] == offered_to

    moodle.update_course(courses["ESS-POPIA"], visible=1)  # shown again: offered again, never announced twice
    before = scalar(engine, "SELECT COUNT(*) FROM ess_notification WHERE kind = 'new_course'")
    fourth = night()
    assert fourth["counts"]["ess"]["offered"] == 0
    assert fourth["counts"]["ess"]["offered_again"] == third["counts"]["ess"]["withdrawn"]
    assert scalar(engine, "SELECT COUNT(*) FROM ess_notification WHERE kind = 'new_course'") == before


def test_an_approval_required_integration_enrols_only_approved_requests(ess_night):
    night = ess_night(approval_required=True)
    engine, moodle, courses = night.engine, night.moodle, night.courses
    approved, waiting = employees(engine)["active"][:2]
    file_request(engine, approved, courses["ESS-EXCEL"], "2026-11-20 08:00:00", approved=True)
    file_request(engine, waiting, courses["ESS-EXCEL"], "2026-11-20 08:00:00")

    first = night()
    assert first["complete"]
    decided = requests(engine)
    assert decided[(approved, courses["ESS-EXCEL"])] == ("enrolled", "enrolled in Moodle as student")
    assert decided[(waiting, courses["ESS-EXCEL"])] == ("pending", None)
    assert set(ess_outcomes(first, "awaiting_approval")) == {f"EE{waiting:05d}"}
    link = dict(rows(engine, "SELECT employee_id, moodle_user_id FROM moodle_user_link"))
    assert set(moodle.enrolments[courses["ESS-EXCEL"]]) == {link[approved]}

    with engine.begin() as connection:
        connection.execute(text("UPDATE ess_enrolment_request SET approved_at = requested_at WHERE employee_id = :e"),
                           {"e": waiting})
    second = night()
    assert second["counts"]["ess"]["enrolled"] == 1
    assert requests(engine)[(waiting, courses["ESS-EXCEL"])] == ("enrolled", "enrolled in Moodle as student")
    assert set(moodle.enrolments[courses["ESS-EXCEL"]]) == {link[approved], link[waiting]}


def test_after_a_failed_preflight_no_step_whose_inputs_were_never_made_runs(ess_night, monkeypatch):
    night = ess_night(approval_required=False)
    monkeypatch.setenv("AIRFLOW_CONN_MOODLE_DEMO", json.dumps({"conn_type": "http", "host": night.moodle.base_url,
                                                                "password": "not-the-token"}))
    summary = night()
    assert summary["state"] == "failed"
    assert summary["failed_tasks"] == ["check_moodle_site"]
    states = {task["task_id"]: task["state"] for task in summary["tasks"]}
    ran = sorted(task_id for task_id, state in states.items() if state not in ("upstream_failed", "skipped"))
    assert ran == ["check_moodle_site", "extract_employees", "transform_employees", "validate_employees"]
    assert states["read_ess_assessments"] == states["record_ess_requests"] == "upstream_failed"
    assert states["record_user_links"] == "upstream_failed"
