"""The demo school's DAG run for real with dag.test(), on SQLite and on PostgreSQL: provisioning, a quiet second
run, an administrator's category move, and the rollover the guide describes (preview, apply with deletions off,
then preview and apply with deletions on, last year's courses deleted when only empty ones may be).

Each backend gets a school MIS database of its own (the ``psiber`` fixture makes any source database) and a fresh
Moodle stand-in.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from moodle_stand_in import MoodleStandIn
from school.demo_school import (
    HAND_MADE_MOODLE_USERS,
    STUDENT_EMAIL_TAKEN,
    STUDENT_WITHOUT_EMAIL,
    TEACHER_ALREADY_IN_MOODLE,
    roll_over,
    seed_demo_school,
    set_up_moodle,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO_FILE = ROOT / "include" / "integrations" / "school" / "greenfield_high.yaml"
DAG_ID = "school_moodle_greenfield_high"
WRITES = ("core_user_create_users", "core_user_update_users", "core_user_delete_users", "core_course_create_courses",
          "core_course_update_courses", "core_course_delete_courses", "enrol_manual_enrol_users",
          "enrol_manual_unenrol_users", "core_role_assign_roles", "core_role_unassign_roles")


@pytest.fixture
def school_run(airflow_db, psiber, tmp_path, monkeypatch):
    """Runs the demo school's DAG once per call (with the integration file's settings changed by ``settings``)
    and returns the run's summary."""
    engine, connection = psiber
    seed_demo_school(engine)
    token = secrets.token_hex(16)
    moodle = MoodleStandIn(token).start()
    categories = set_up_moodle(moodle)
    monkeypatch.setenv("AIRFLOW_CONN_MOODLE_DEMO", json.dumps({"conn_type": "http", "host": moodle.base_url,
                                                                "password": token}))
    monkeypatch.setenv("AIRFLOW_CONN_SCHOOL_DEMO", json.dumps(connection))
    monkeypatch.setenv("MOODLE_SYNC_DATA_DIR", str(tmp_path / "runs"))
    folder = tmp_path / "school_integrations"
    folder.mkdir()
    monkeypatch.setenv("SCHOOL_MOODLE_INTEGRATIONS", str(folder))
    from airflow.dag_processing.dagbag import DagBag

    def run(settings: dict | None = None, **conf) -> dict:
        content = yaml.safe_load(DEMO_FILE.read_text())
        for key, value in (settings or {}).items():
            content[key] = {**content[key], **value} if isinstance(value, dict) else value
        (folder / DEMO_FILE.name).write_text(yaml.safe_dump(content))
        bag = DagBag(dag_folder=str(ROOT / "dags" / "school_moodle_sync.py"))
        assert not bag.import_errors, bag.import_errors
        writes_before = sum(name in WRITES for name, _ in moodle.calls)
        dag_run = bag.dags[DAG_ID].test(run_conf={"preview": False, "allow_mass_changes": False, **conf})
        [path] = (tmp_path / "runs").glob(f"*/{dag_run.run_id.replace(':', '_').replace('+', '_')}/summary.json")
        summary = json.loads(path.read_text())
        summary["state"] = str(dag_run.state)
        summary["moodle_writes"] = sum(name in WRITES for name, _ in moodle.calls) - writes_before
        return summary

    run.moodle, run.engine, run.categories = moodle, engine, categories
    yield run
    moodle.stop()


def outcomes(summary: dict, action: str, flow: str) -> dict[str, str]:
    return {o["record"]: o["reason"] for o in summary["outcomes"] if o["action"] == action and o["flow"] == flow}


def users_with_idnumber(moodle: MoodleStandIn, idnumber: str) -> list[dict]:
    return [user for user in moodle.users.values() if user.get("idnumber") == idnumber]


def course_by_idnumber(moodle: MoodleStandIn, idnumber: str) -> dict:
    [course] = [course for course in moodle.courses.values() if course["idnumber"] == idnumber]
    return course


def roles_in(moodle: MoodleStandIn, course: dict, user: dict) -> set[str]:
    record = moodle.enrolments.get(course["id"], {}).get(user["id"])
    return set() if record is None else {record["role"], *record.get("other_roles", [])}


def enrolment_count(moodle: MoodleStandIn) -> int:
    return sum(len(members) for members in moodle.enrolments.values())


def test_first_run_provisions_second_changes_nothing_and_a_moved_course_stays(school_run):
    moodle = school_run.moodle
    first = school_run()
    assert first["state"] == "success" and first["complete"]
    people, classes, enrolments = (first["counts"][flow] for flow in ("people", "classes", "enrolments"))
    assert people["created"] == 326 and classes["created"] == 32 and enrolments["enrolled"] > 1000
    assert len(users_with_idnumber(moodle, TEACHER_ALREADY_IN_MOODLE)) == 1  # linked, not duplicated
    assert outcomes(first, "updated", "people")[TEACHER_ALREADY_IN_MOODLE].startswith("changed:")
    holder = next(u for u in moodle.users.values() if u["username"] == HAND_MADE_MOODLE_USERS[1]["username"])
    assert f"Moodle user #{holder['id']}" in outcomes(first, "conflict", "people")[STUDENT_EMAIL_TAKEN]
    assert not users_with_idnumber(moodle, STUDENT_EMAIL_TAKEN)
    assert "e-mail is missing" in outcomes(first, "invalid", "people")[STUDENT_WITHOUT_EMAIL]

    maths, group = course_by_idnumber(moodle, "SUB-2027-8-MATH"), course_by_idnumber(moodle, "GRP-2027-8-1")
    categories = school_run.categories
    assert (maths["format"], maths["visible"], maths["category"]) == ("topics", 1, categories["GFH-SUBJECTS"])
    assert (group["format"], group["visible"], group["category"]) == ("weeks", 0, categories["GFH-GROUPS"])
    assert not [c for c in moodle.courses.values() if c["idnumber"].startswith("REG-")]  # always disabled
    assert "always disabled" in outcomes(first, "skipped", "classes")["REG-2027-8A"]
    assert "'disabled'" in outcomes(first, "skipped", "classes")["SUB-2027-12-HIST"]  # the class's own override
    course_by_idnumber(moodle, "GRP-2027-11-2")  # a manual class in an SMS mode, enabled per class
    course_by_idnumber(moodle, "SUP-2027-MATHS-CATCHUP")  # disabled group type, enabled per class
    with school_run.engine.connect() as connection:  # who teaches grade 8 maths, in the MIS
        teacher_id = connection.execute(text("SELECT person_external_id FROM school_membership WHERE role = "
                                             "'teacher' AND class_external_id = 'SUB-2027-8-MATH'")).scalar_one()
    teacher, student = users_with_idnumber(moodle, teacher_id)[0], users_with_idnumber(moodle, "S-2001")[0]
    assert roles_in(moodle, maths, teacher) == {"editingteacher"}
    assert roles_in(moodle, maths, student) == {"student"}

    second = school_run()
    assert second["complete"] and second["moodle_writes"] == 0
    for flow in ("people", "classes", "enrolments"):
        assert not {a: n for a, n in second["counts"][flow].items()
                    if a not in ("unchanged", "skipped", "invalid", "conflict", "kept") and n}, flow

    moodle.update_course(maths["id"], categoryid=school_run.categories["GFH-ARCHIVE"], visible=0)
    third = school_run()
    assert third["moodle_writes"] == 0
    assert moodle.courses[maths["id"]]["category"] == school_run.categories["GFH-ARCHIVE"]
    assert "SUB-2027-8-MATH" in outcomes(third, "unchanged", "classes")


def test_synchronisation_disabled_while_a_run_is_under_way_stops_its_writes(school_run, monkeypatch, tmp_path):
    from school import class_sync

    plan_classes = class_sync.plan_classes

    def disabled_after_planning(integration, run_dir, *args):  # the guide's first step, taken while a run plans
        counts = plan_classes(integration, run_dir, *args)
        path = tmp_path / "school_integrations" / DEMO_FILE.name
        path.write_text(path.read_text().replace("enabled_snapshot_only", "disabled"))
        return counts

    monkeypatch.setattr(class_sync, "plan_classes", disabled_after_planning)
    stopped = school_run()
    assert stopped["state"] == "failed" and stopped["moodle_writes"] == 0
    assert stopped["failed_tasks"] == ["apply_people"]
    states = {task["task_id"]: task["state"] for task in stopped["tasks"]}
    assert states["record_user_links"] == "success"  # what an interrupted write made is recorded
    assert states["apply_classes"] == states["record_course_links"] == "upstream_failed"  # never written: nothing
    held = {(o["flow"], o["record"]) for o in stopped["outcomes"] if o["action"] == "skipped"
            and o["reason"] == "not written: synchronisation was disabled while this run was under way"}
    monkeypatch.setattr(class_sync, "plan_classes", plan_classes)

    enabled_again = school_run()  # the next run writes what the stopped one held back
    assert enabled_again["complete"]
    assert held == {(o["flow"], o["record"]) for o in enabled_again["outcomes"]
                    if o["flow"] in ("people", "classes") and o["action"] in ("created", "updated")}
    assert enabled_again["counts"]["people"]["created"] == 326 and enabled_again["counts"]["classes"]["created"] == 32


def test_after_a_failed_preflight_no_other_step_runs(school_run, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MOODLE_DEMO", json.dumps({"conn_type": "http", "host": school_run.moodle.base_url,
                                                                "password": "not-the-token"}))
    summary = school_run()
    assert summary["state"] == "failed" and summary["failed_tasks"] == ["check_moodle_site"]
    assert {task["state"] for task in summary["tasks"] if task["task_id"] != "check_moodle_site"} == \
        {"upstream_failed"}


def test_rollover_previewed_then_applied_without_then_with_deletions(school_run):
    moodle, engine = school_run.moodle, school_run.engine
    assert school_run()["complete"]
    changed = roll_over(engine)
    users_before, courses_before = dict(moodle.users), set(moodle.courses)
    enrolments_before = enrolment_count(moodle)

    off = {"synchronisation": "disabled"}  # the guide: disable, roll the MIS over, preview
    refused = school_run(off)
    assert refused["state"] == "failed" and refused["moodle_writes"] == 0
    assert "check_moodle_site" in refused["failed_tasks"]
    preview = school_run(off, preview=True)
    assert preview["complete"] and preview["moodle_writes"] == 0
    assert set(outcomes(preview, "would_suspend", "people")) == set(changed["left"])
    assert set(outcomes(preview, "would_create", "people")) == set(changed["new"])
    assert len(outcomes(preview, "would_create", "classes")) == 32
    assert not [o for o in preview["outcomes"] if o["action"] in ("would_delete", "would_unenrol")]

    applied = school_run()  # deletions off (the file's defaults): nothing is deleted
    assert applied["complete"]
    assert set(outcomes(applied, "suspended", "people")) == set(changed["left"])
    assert set(moodle.users) >= set(users_before) and set(moodle.courses) >= courses_before
    assert enrolment_count(moodle) > enrolments_before
    kept = outcomes(applied, "kept", "classes")
    assert len(kept) == 32 and all("dont_delete" in reason for reason in kept.values())
    assert all(moodle.users[u["id"]]["suspended"] for p in changed["left"] for u in users_with_idnumber(moodle, p))

    with engine.begin() as connection:  # a membership ends in a course the sync keeps
        connection.execute(text("DELETE FROM school_membership WHERE person_external_id = 'S-2001' AND "
                                "class_external_id = 'SUB-2028-9-MATH'"))
    by_hand = next(u for u in moodle.users.values() if u["username"] == HAND_MADE_MOODLE_USERS[1]["username"])
    last_years_maths = course_by_idnumber(moodle, "SUB-2027-8-MATH")
    moodle.enrol(by_hand["id"], last_years_maths["id"])  # an administrator enrols an account the MIS does not own
    mis_accounts_in_it = {moodle.users[user_id]["idnumber"] for user_id in moodle.enrolments[last_years_maths["id"]]
                          if user_id != by_hand["id"]} - set(changed["left"])
    allowed = {"deletion": {"users": True, "enrolments": True, "courses": "delete_only_empty"}}
    listed = school_run(allowed, preview=True)
    assert listed["complete"] and listed["moodle_writes"] == 0
    would = [(o["flow"], o["action"], o["record"]) for o in listed["outcomes"] if o["action"].startswith("would_")]
    assert would[0][1] == "would_delete"  # deletions first
    deletions = {(flow, record) for flow, action, record in would if action in ("would_delete", "would_unenrol")}
    assert {record for flow, record in deletions if flow == "people"} == set(changed["left"])
    deleted_courses = {record for flow, record in deletions if flow == "classes"}
    assert len(deleted_courses) == 31 and "SUB-2027-8-MATH" not in deleted_courses  # someone enrolled by hand stays
    assert "1 accounts the MIS does not provision" in outcomes(listed, "kept", "classes")["SUB-2027-8-MATH"]
    assert {record for flow, record in deletions if flow == "enrolments"} == \
        {"S-2001 in SUB-2028-9-MATH"} | {f"{person} in SUB-2027-8-MATH" for person in mis_accounts_in_it}
    assert len(mis_accounts_in_it) > 20
    assert any("allow_mass_changes=true" in o["reason"] for o in listed["outcomes"] if o["action"] == "warning")

    guarded = school_run(allowed)
    assert guarded["state"] == "failed" and guarded["moodle_writes"] == 0  # 31 of 64 courses: the guard stops it
    held = {(o["flow"], o["record"]) for o in guarded["outcomes"]
            if o["action"] == "skipped" and "the mass-change guard stopped the run" in o["reason"]}
    assert held == {(flow, record) for flow, record in deletions if flow != "enrolments"}

    done = school_run(allowed, allow_mass_changes=True)
    assert done["complete"]
    removed = {(o["flow"], o["record"]) for o in done["outcomes"] if o["action"] in ("deleted", "unenrolled")}
    assert removed == deletions
    assert not any(users_with_idnumber(moodle, person) for person in changed["left"])
    assert [c["idnumber"] for c in moodle.courses.values() if c["idnumber"].endswith("2027")
            or "-2027-" in c["idnumber"]] == ["SUB-2027-8-MATH"]
    assert set(moodle.enrolments[last_years_maths["id"]]) == {by_hand["id"]}  # the hand-made enrolment is left
    student = users_with_idnumber(moodle, "S-2001")[0]
    assert not roles_in(moodle, course_by_idnumber(moodle, "SUB-2028-9-MATH"), student)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM school_moodle_course_link")).scalar_one() == 33
