"""The school flows' writes under lost answers: a fault-injecting proxy (tests/fault_proxy.py) sits between the hook
and the Moodle stand-in. Moodle does the work and the answer is lost (held until the client's timeout has fired,
or the connection reset after Moodle answered), or a 5xx comes back: no write is sent again blind, what Moodle did
is read back, and the outcomes say so."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from pathlib import Path

import pytest
from fault_proxy import FaultProxy
from sqlalchemy import create_engine, text
from test_school_steps import SETTINGS, provision_people_and_classes, write_people_and_classes

from moodle_provider.exceptions import MoodleTransientError
from moodle_provider.hooks.moodle import MoodleHook
from moodle_stand_in import MoodleStandIn
from school import class_sync, enrolment_sync, people_sync
from school.config import SchoolIntegration
from school.demo_school import seed_demo_school, set_up_moodle
from school.mis_extract import extract_school, validate_school
from school.school_db import select_course_links
from sync_common.read_back import READ_BACK
from sync_common.run_files import read_json
from sync_common.task_failures import TASK_RETRIES

DELETE = "core_course_delete_courses"
LAB_FINDINGS = Path(__file__).resolve().parents[1] / "moodle_stand_in" / "contract" / "lab_findings"

@pytest.fixture(autouse=True)
def quick_hook_retries(monkeypatch):
    monkeypatch.setattr(MoodleHook, "backoff_seconds", 0.001)


@pytest.fixture
def school(tmp_path, monkeypatch):
    """The demo school's MIS and its Moodle, reached straight (``moodle_steps``) and through a fault proxy
    (``moodle_faults``, whose 0.3 s timeout a late answer always outlasts: the proxy holds it until the hook hangs
    up)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'school.db'}")
    seed_demo_school(engine, students=120, teachers=12)
    token = secrets.token_hex(16)
    with MoodleStandIn(token) as moodle, FaultProxy(moodle.base_url, seed=2027) as proxy:
        set_up_moodle(moodle)
        for name, host, extra in (("STEPS", moodle.base_url, {}), ("FAULTS", proxy.base_url, {"timeout": 0.3})):
            monkeypatch.setenv(f"AIRFLOW_CONN_MOODLE_{name}", json.dumps({"conn_type": "http", "host": host,
                                                                          "password": token, "extra": extra}))
        yield moodle, proxy, engine


def integration(**settings) -> SchoolIntegration:
    return SchoolIntegration.model_validate({**SETTINGS, **settings})


def new_run(tmp_path, engine, name: str):
    run_dir = tmp_path / name
    run_dir.mkdir()
    extract_school(engine, run_dir)
    return run_dir


def test_a_course_deletion_answered_after_the_timeout_is_reported_deleted_and_its_link_dropped(school, tmp_path):
    """Live: 32 courses deleted in 61.8 s, past the 60 s timeout; the call sent again answered unknowncourseidnumber
    for each, and all 32 were reported failed with their links kept."""
    moodle, proxy, engine = school
    first = integration()
    run_dir = new_run(tmp_path, engine, "first")
    provision_people_and_classes(first, moodle, engine, run_dir)
    made = write_people_and_classes(first, engine, run_dir)
    with engine.begin() as connection:
        connection.execute(text("UPDATE school_class SET provisioning_override = 'disabled' "
                                "WHERE external_id LIKE 'SUB-%'"))
    gone = {external_id: course for external_id, course in made.items() if external_id.startswith("SUB-")}
    assert len(gone) > 8

    settings = integration(deletion={"courses": "delete"})
    run_dir = new_run(tmp_path, engine, "deletions")
    provision_people_and_classes(settings, moodle, engine, run_dir)
    proxy.functions, proxy.rate, proxy.kinds = {DELETE}, 1.0, ("late",)  # every deletion answered too late
    class_sync.apply_classes(settings, MoodleHook("moodle_faults"), engine, run_dir, "run-2")
    class_sync.record_course_links(settings, engine, run_dir, "run-2")

    outcomes = {o["record"]: o for o in read_json(run_dir / "outcomes/classes.apply.json")["outcomes"]}
    assert {external_id for external_id, o in outcomes.items() if o["action"] == "deleted"} == set(gone)
    assert all(READ_BACK in outcomes[external_id]["reason"] for external_id in gone)
    assert not any(o["action"] == "failed" for o in outcomes.values())
    assert not set(gone.values()) & set(moodle.courses)
    assert not set(gone) & set(select_course_links(engine, settings.key))  # the links went with the courses
    sent = [json.dumps(e.params) for e in proxy.exchanges]
    assert len(sent) == len(set(sent)) and all(e.fault == "late" for e in proxy.exchanges)  # each sent once
    assert all(len(e.params) <= class_sync.DELETION_WEIGHT_PER_CALL for e in proxy.exchanges)


def test_the_stand_in_answers_the_live_deletion_and_its_repeat_exactly(monkeypatch):
    """Lab finding 02 as recorded (tests/moodle_stand_in/contract/lab_findings/02-*), compared value by value: the
    32 deletions, then the same call again, warned course by course."""
    recordings = [json.loads(path.read_text()) for path in sorted(LAB_FINDINGS.glob("02-*.json"))]
    token = secrets.token_hex(16)
    with MoodleStandIn(token) as moodle:
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE_LAB", json.dumps({"conn_type": "http", "host": moodle.base_url,
                                                                  "password": token}))
        category = moodle.add_category("Classes 2026")["id"]
        ids = [moodle.add_course(course["shortname"], categoryid=category)["id"]
               for course in recordings[0]["setup"]["courses"]]
        assert ids == recordings[1]["request"]["params"]["courseids"]  # numbered as the live site's
        hook = MoodleHook("moodle_lab")
        for recording in recordings:
            assert hook.call(DELETE, courseids=ids) == recording["response"]["body"]


def test_course_deletions_are_sized_so_a_site_answers_within_the_timeout():
    """At some 2 s a course (the live site), four courses a call; a course with many enrolments goes alone."""
    deletes = [{"id": n} for n in range(1, 11)]
    assert [len(batch) for batch in class_sync.deletion_batches(deletes, {})] == [4, 4, 2]
    heavy = class_sync.deletion_batches(deletes, {3: 400, 4: 30})
    assert [[item["id"] for item in batch] for batch in heavy] == [[1, 2], [3], [4, 5, 6], [7, 8, 9, 10]]


def run_step(step, tries: Counter, name: str) -> None:
    """One task with the retries Airflow would give it: a transient failure runs it again."""
    for _try in range(1 + TASK_RETRIES):
        tries[name] += 1
        try:
            step()
            return
        except MoodleTransientError:
            continue
    pytest.fail(f"{name} did not converge in {1 + TASK_RETRIES} tries")


def night(settings: SchoolIntegration, engine, run_dir, hook: MoodleHook) -> Counter:
    """The DAG's Moodle tasks in their order, each retried as Airflow would."""
    tries: Counter = Counter()
    validate_school(settings, run_dir)
    steps = {
        "read_moodle_users": lambda: people_sync.read_moodle_users(settings, hook, engine, run_dir),
        "plan_people": lambda: people_sync.plan_people(settings, run_dir),
        "read_moodle_courses": lambda: class_sync.read_moodle_courses(settings, hook, engine, run_dir),
        "plan_classes": lambda: class_sync.plan_classes(settings, run_dir),
        "apply_people": lambda: people_sync.apply_people(settings, hook, engine, run_dir, "night"),
        "record_user_links": lambda: people_sync.record_user_links(settings, engine, run_dir, "night"),
        "apply_classes": lambda: class_sync.apply_classes(settings, hook, engine, run_dir, "night"),
        "record_course_links": lambda: class_sync.record_course_links(settings, engine, run_dir, "night"),
        "read_enrolments": lambda: enrolment_sync.read_enrolments(settings, hook, run_dir),
        "plan_enrolments": lambda: enrolment_sync.plan_enrolments_step(settings, engine, run_dir,
                                                                       allow_mass_changes=True, preview=False),
        "apply_enrolments": lambda: enrolment_sync.apply_enrolments(settings, hook, engine, run_dir, "night"),
    }
    for name, step in steps.items():
        run_step(step, tries, name)
    return tries


def applied(run_dir) -> list[dict]:
    return [o for name in ("outcomes/people.apply.json", "outcomes/classes.apply.json",
                           "outcomes/enrolments.apply.json") for o in read_json(run_dir / name)["outcomes"]]


def test_a_first_night_at_50_percent_lost_answers_on_every_call_converges_without_a_duplicate(school, tmp_path,
                                                                                             monkeypatch):
    """Live before: three nights failed at apply_people (accounts made, answers lost, the old plan sent again and
    refused), and no course or enrolment was ever made."""
    moodle, proxy, engine = school
    settings = integration()
    reference_dir = tmp_path / "reference"
    with MoodleStandIn(moodle.token) as clean:  # the same night without faults, on a Moodle of its own
        set_up_moodle(clean)
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE_REFERENCE", json.dumps({
            "conn_type": "http", "host": clean.base_url, "password": moodle.token}))
        reference_engine = create_engine(f"sqlite:///{tmp_path / 'reference.db'}")
        seed_demo_school(reference_engine, students=120, teachers=12)
        reference_dir.mkdir()
        extract_school(reference_engine, reference_dir)
        reference = _night_counts(settings, reference_engine, reference_dir, clean)

    proxy.rate = 0.5
    run_dir = new_run(tmp_path, engine, "night")
    tries = night(settings, engine, run_dir, MoodleHook("moodle_faults"))

    outcomes = applied(run_dir)
    assert not [o for o in outcomes if o["action"] == "failed"]
    assert Counter(o["action"] for o in outcomes) == reference["actions"]
    assert any(READ_BACK in o["reason"] for o in outcomes)  # what Moodle did was read back, and said
    assert _moodle_counts(moodle) == reference["moodle"]  # no account, course or enrolment twice
    faults = Counter(e.fault for e in proxy.faults())
    assert set(faults) == {"5xx", "reset", "late"} and sum(faults.values()) > 30, faults
    assert {e.wsfunction for e in proxy.faults()} >= {"core_user_create_users", "enrol_manual_enrol_users"}
    assert max(tries.values()) > 1, tries  # Airflow's retries were needed

    proxy.rate = 0.0  # a fault-free night finds nothing the faulty one missed
    quiet = new_run(tmp_path, engine, "quiet")
    night(settings, engine, quiet, MoodleHook("moodle_steps"))
    assert not [o for o in applied(quiet) if o["action"] in ("created", "enrolled", "role_added", "failed")]
    assert _moodle_counts(moodle) == reference["moodle"]


def _night_counts(settings, engine, run_dir, moodle) -> dict:
    night(settings, engine, run_dir, MoodleHook("moodle_reference"))
    return {"actions": Counter(o["action"] for o in applied(run_dir)), "moodle": _moodle_counts(moodle)}


def _moodle_counts(moodle) -> dict:
    """Accounts and courses by ID number (each must be there once) and the enrolments."""
    idnumbers = Counter(user.get("idnumber") for user in moodle.users.values() if user.get("idnumber"))
    courses = Counter(course.get("idnumber") for course in moodle.courses.values() if course.get("idnumber"))
    assert max(idnumbers.values()) == 1 and max(courses.values()) == 1
    return {"users": len(idnumbers), "courses": len(courses),
            "enrolments": sum(len(members) for members in moodle.enrolments.values())}
