"""The school flows' apply steps against the Moodle stand-in: one bad record never fails its batch-mates, a course
without a manual enrolment method fails only its own enrolments, and every call stays under max_input_vars."""

from __future__ import annotations

import json
import secrets

import pytest
from sqlalchemy import create_engine, text

from moodle_provider.exceptions import MoodleRequestError
from moodle_provider.hooks.moodle import MoodleHook
from moodle_stand_in import MoodleStandIn
from school import class_sync, enrolment_sync, people_sync
from school.config import SchoolIntegration
from school.demo_school import seed_demo_school, set_up_moodle
from school.mis_extract import extract_school, validate_school
from school.school_db import select_user_links
from sync_common.moodle_batches import send_isolating
from sync_common.refusals import SiteRefusesWritesError
from sync_common.run_files import read_json

SETTINGS = {"name": "Greenfield High", "moodle_conn_id": "moodle_steps", "school_conn_id": "school_steps",
            "group_types": {"Subject": {"provisioning": "enabled", "category": "GFH-SUBJECTS"},
                            "Teaching group": {"provisioning": "enabled", "category": "GFH-GROUPS"}}}


@pytest.fixture
def site(tmp_path, monkeypatch):
    engine = create_engine(f"sqlite:///{tmp_path / 'school.db'}")
    seed_demo_school(engine, students=120, teachers=12)
    token = secrets.token_hex(16)
    with MoodleStandIn(token) as moodle:
        set_up_moodle(moodle)
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE_STEPS", json.dumps({"conn_type": "http", "host": moodle.base_url,
                                                                     "password": token}))
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        extract_school(engine, run_dir)
        yield moodle, engine, run_dir


def integration(**settings) -> SchoolIntegration:
    return SchoolIntegration.model_validate({**SETTINGS, **settings})


def provision_people_and_classes(integration: SchoolIntegration, moodle, engine, run_dir) -> None:
    hook = MoodleHook("moodle_steps")
    validate_school(integration, run_dir)
    people_sync.read_moodle_users(integration, hook, engine, run_dir)
    people_sync.plan_people(integration, run_dir)
    class_sync.read_moodle_courses(integration, hook, engine, run_dir)
    class_sync.plan_classes(integration, run_dir)


def write_people_and_classes(settings: SchoolIntegration, engine, run_dir) -> dict[str, int]:
    """The planned users and courses written, and their links recorded; returns the courses made, by class."""
    hook = MoodleHook("moodle_steps")
    people_sync.apply_people(settings, hook, engine, run_dir, "run-1")
    people_sync.record_user_links(settings, engine, run_dir, "run-1")
    class_sync.apply_classes(settings, hook, engine, run_dir, "run-1")
    class_sync.record_course_links(settings, engine, run_dir, "run-1")
    return dict(read_json(run_dir / "outcomes/classes.apply.json")["created_links"])


def read_and_plan_enrolments(settings: SchoolIntegration, engine, run_dir) -> None:
    enrolment_sync.read_enrolments(settings, MoodleHook("moodle_steps"), run_dir)
    enrolment_sync.plan_enrolments_step(settings, engine, run_dir, allow_mass_changes=False, preview=False)


def outcome_of(run_dir, name: str, record: str) -> dict:
    [found] = [o for o in read_json(run_dir / name)["outcomes"] if o["record"] == record]
    return found


def test_a_course_without_manual_enrolment_fails_only_its_own_enrolments_in_small_calls(site):
    moodle, engine, run_dir = site
    settings = integration(batch_size=500, moodle_max_input_vars=1000)
    hook = MoodleHook("moodle_steps")
    provision_people_and_classes(settings, moodle, engine, run_dir)
    created = write_people_and_classes(settings, engine, run_dir)
    broken = created["SUB-2027-8-MATH"]
    moodle.set_manual_enrolment(broken, "absent")  # an administrator deleted the method
    read_and_plan_enrolments(settings, engine, run_dir)
    calls_before = len(moodle.calls)
    enrolment_sync.apply_enrolments(settings, hook, engine, run_dir, "run-1")

    applied = read_json(run_dir / "outcomes/enrolments.apply.json")["outcomes"]
    failed = [o for o in applied if o["action"] == "failed"]
    assert failed and all(o["record"].endswith(" in SUB-2027-8-MATH") for o in failed)
    assert all(f"Moodle course #{broken} has no enabled manual enrolment method" in o["reason"] for o in failed)
    assert all(o["owner"] == "Moodle administrator" for o in failed)
    enrolled = [o for o in applied if o["action"] == "enrolled"]
    assert len(enrolled) + len(failed) == len(applied) and len(enrolled) > 300
    assert not moodle.enrolments.get(broken)
    assert all(len(members) for course, members in moodle.enrolments.items() if course in created.values()
               and course != broken)
    calls = [params for name, params in moodle.calls[calls_before:] if name == "enrol_manual_enrol_users"]
    assert len(calls) > 1 and all(len(call["enrolments"]) * 3 < 1000 for call in calls)
    assert not moodle.server_log  # no call was cut by max_input_vars


@pytest.mark.parametrize("delete_enrolments", [False, True])
def test_only_the_courses_the_sync_no_longer_provisions_are_read_for_emptiness(site, tmp_path, delete_enrolments):
    """One user of each is enough to keep it, unless the MIS's own enrolments may be taken back: then everyone."""
    moodle, engine, run_dir = site
    first = integration()
    provision_people_and_classes(first, moodle, engine, run_dir)
    created = write_people_and_classes(first, engine, run_dir)
    read_and_plan_enrolments(first, engine, run_dir)
    enrolment_sync.apply_enrolments(first, MoodleHook("moodle_steps"), engine, run_dir, "run-1")
    with engine.begin() as connection:
        connection.execute(text("UPDATE school_class SET provisioning_override = 'disabled' WHERE external_id IN "
                                "('SUB-2027-8-MATH', 'SUB-2027-9-MATH')"))
    settings = integration(deletion={"courses": "delete_only_empty", "enrolments": delete_enrolments})
    next_run = tmp_path / "next"
    next_run.mkdir()
    extract_school(engine, next_run)
    calls_before = len(moodle.calls)
    provision_people_and_classes(settings, moodle, engine, next_run)
    reads = [params for name, params in moodle.calls[calls_before:] if name == "core_enrol_get_enrolled_users"]
    released = {created["SUB-2027-8-MATH"], created["SUB-2027-9-MATH"]}
    assert sorted(int(params["courseid"]) for params in reads) == sorted(released)
    limits = {option["value"] for params in reads for option in params["options"] if option["name"] == "limitnumber"}
    assert limits == (set() if delete_enrolments else {"1"})
    plan = read_json(next_run / "outcomes/classes.plan.json")
    assert {item["id"] for item in plan["deletes"]} == (released if delete_enrolments else set())
    assert {item["id"] for item in plan["released"].values()} == (set() if delete_enrolments else released)


def test_a_refused_account_never_fails_its_batch_mates(site):
    moodle, engine, run_dir = site
    settings = integration()
    provision_people_and_classes(settings, moodle, engine, run_dir)
    plan = read_json(run_dir / "outcomes/people.plan.json")
    victim = plan["creates"][3]
    moodle.add_user(username=victim["username"], firstname="Other", lastname="Person", email="other@example.com")
    people_sync.apply_people(settings, MoodleHook("moodle_steps"), engine, run_dir, "run-1")
    refused = outcome_of(run_dir, "outcomes/people.apply.json", victim["external_id"])
    assert refused["action"] == "failed" and "Moodle refused to create the account" in refused["reason"]
    created = [o for o in read_json(run_dir / "outcomes/people.apply.json")["outcomes"] if o["action"] == "created"]
    assert len(created) == len(plan["creates"]) - 1


def test_send_isolating_refuses_only_the_bad_item_and_raises_the_sites_refusals():
    sent, refused = [], []

    def call(batch):
        if any(item["bad"] for item in batch):
            raise MoodleRequestError("refused", errorcode="invalidparameter", wsfunction="f")
        sent.append(len(batch))

    items = [{"n": n, "bad": n == 5} for n in range(8)]
    accepted = send_isolating(items, call, lambda item, error: refused.append(item["n"]), {"invalidparameter"})
    assert [item["n"] for item in accepted] == [0, 1, 2, 3, 4, 6, 7] and refused == [5]

    def site(batch):
        raise MoodleRequestError("no", errorcode="nopermissions", wsfunction="f")

    with pytest.raises(MoodleRequestError):
        send_isolating(items, site, lambda item, error: refused.append(item), {"invalidparameter"})



def school_night(settings: SchoolIntegration, moodle, engine, run_dir, after_plans=lambda: None) -> list[dict]:
    """People, classes and enrolments in the DAG's order (``after_plans``: what happens in Moodle between the
    people and class plans and their writes); the night's outcomes."""
    run_dir.mkdir()
    extract_school(engine, run_dir)
    provision_people_and_classes(settings, moodle, engine, run_dir)
    after_plans()
    write_people_and_classes(settings, engine, run_dir)
    read_and_plan_enrolments(settings, engine, run_dir)
    enrolment_sync.apply_enrolments(settings, MoodleHook("moodle_steps"), engine, run_dir, "run-1")
    return [o for name in ("outcomes/people.plan.json", "outcomes/people.apply.json", "outcomes/classes.apply.json",
                           "outcomes/enrolments.plan.json", "outcomes/enrolments.apply.json")
            for o in read_json(run_dir / name)["outcomes"]]


def enrolled_student(moodle, engine, settings: SchoolIntegration) -> tuple[str, int, list[int]]:
    """A linked person enrolled in Moodle: External ID, Moodle user id, the courses."""
    external_id, user_id = next((key, user_id) for key, user_id in sorted(select_user_links(engine, settings.key)
                                                                          .items())
                                if any(user_id in members for members in moodle.enrolments.values()))
    return external_id, user_id, sorted(course for course, members in moodle.enrolments.items() if user_id in members)


def made_again(outcomes: list[dict], moodle, engine, settings: SchoolIntegration, deleted: tuple) -> int:
    """A night after an administrator deleted a person's account (``enrolled_student``): nothing failed, a warning
    names the deleted account, and a new account is linked and enrolled in the same courses; its id."""
    external_id, old_id, classes = deleted
    assert not [o for o in outcomes if o["action"] == "failed"]
    mine = sorted((o["action"], o["owner"]) for o in outcomes if o["record"] == external_id)
    assert mine == [("created", ""), ("warning", "Moodle administrator")]
    assert f"account deleted in Moodle by an administrator: Moodle user #{old_id}" in str(outcomes)
    new_id = select_user_links(engine, settings.key)[external_id]
    assert new_id != old_id and moodle.users[new_id]["idnumber"] == external_id
    assert sorted(course for course, members in moodle.enrolments.items() if new_id in members) == classes
    return new_id


def quiet_night(settings: SchoolIntegration, moodle, engine, run_dir) -> None:
    """A night that writes nothing to Moodle and has nothing to report but records left as they are."""
    moodle.calls.clear()
    outcomes = school_night(settings, moodle, engine, run_dir)
    writes = [name for name, _ in moodle.calls if not name.startswith(("core_user_get", "core_course_get",
                                                                       "core_enrol_get", "core_webservice"))]
    assert writes == [] and {o["action"] for o in outcomes} <= {"unchanged", "skipped", "conflict", "invalid"}


def test_a_student_an_administrator_deleted_gets_a_new_account_and_its_enrolments_and_the_next_night_is_quiet(
        site, tmp_path):
    """Lab finding 05: Moodle still answers the deleted account by id; the link is dropped that night, the student
    made again and enrolled in the same classes (not the deleted account), nothing failed; then nothing changes."""
    moodle, engine, _ = site
    settings = integration()
    school_night(settings, moodle, engine, tmp_path / "n1")
    external_id, old_id, classes = enrolled_student(moodle, engine, settings)
    moodle.delete_user(old_id)

    moodle.calls.clear()
    outcomes = school_night(settings, moodle, engine, tmp_path / "n2")
    new_id = made_again(outcomes, moodle, engine, settings, (external_id, old_id, classes))
    written_to = {int(item.get("id", item.get("userid", 0))) for name, params in moodle.calls
                  for item in params.get("users", []) + params.get("enrolments", [])}
    assert old_id not in written_to and new_id in written_to

    quiet_night(settings, moodle, engine, tmp_path / "n3")


def test_an_account_deleted_after_the_people_plan_read_it_is_a_warning_and_the_person_gets_a_new_one_that_night(
        site, tmp_path):
    """update_users warns usernotupdateddeleted: not a refusal of the person's data (the MIS is not to blame), the
    link goes, a new account is made and enrolled in the same classes that night, and the next night is quiet."""
    moodle, engine, _ = site
    settings = integration()
    school_night(settings, moodle, engine, tmp_path / "n1")
    external_id, old_id, classes = enrolled_student(moodle, engine, settings)
    with engine.begin() as connection:  # the MIS corrects the name: the plan updates the account
        connection.execute(text("UPDATE school_person SET last_name = 'Renamed' WHERE external_id = :id"),
                           {"id": external_id})

    def administrator_deletes() -> None:
        assert [item["id"] for item in read_json(tmp_path / "n2" / "outcomes/people.plan.json")["updates"]] == [old_id]
        moodle.delete_user(old_id)

    outcomes = school_night(settings, moodle, engine, tmp_path / "n2", administrator_deletes)
    assert moodle.users[made_again(outcomes, moodle, engine, settings, (external_id, old_id, classes))][
        "lastname"] == "Renamed"
    assert not read_json(tmp_path / "n2" / "outcomes/people.apply.json")["refused"]  # nothing quarantined
    quiet_night(settings, moodle, engine, tmp_path / "n3")


def test_enrolments_of_an_account_deleted_after_the_enrolment_plan_are_warnings_and_their_batch_mates_enrolled(
        site, tmp_path):
    """enrol_manual_enrol_users answers userdeleted for the whole call, naming no one: the deleted account's
    enrolments are isolated (none of its batch-mates fails), each a warning for the Moodle administrator, its link
    goes, and the next night gives the person a new account enrolled in the same classes."""
    moodle, engine, run_dir = site
    settings = integration(batch_size=40)
    provision_people_and_classes(settings, moodle, engine, run_dir)
    write_people_and_classes(settings, engine, run_dir)
    read_and_plan_enrolments(settings, engine, run_dir)
    enrols = read_json(run_dir / "outcomes/enrolments.plan.json")["enrols"]
    links = select_user_links(engine, settings.key)
    old_id = enrols[len(enrols) // 2]["userid"]
    [external_id] = [key for key, user_id in links.items() if user_id == old_id]
    theirs = {item["record"] for item in enrols if item["userid"] == old_id}
    assert len(theirs) > 1
    moodle.delete_user(old_id)
    moodle.calls.clear()

    enrolment_sync.apply_enrolments(settings, MoodleHook("moodle_steps"), engine, run_dir, "run-1")
    applied = read_json(run_dir / "outcomes/enrolments.apply.json")["outcomes"]
    assert sorted(o["record"] for o in applied if o["action"] == "warning") == sorted(theirs)
    assert all(f"account deleted in Moodle by an administrator: Moodle user #{old_id}" in o["reason"]
               and o["owner"] == "Moodle administrator" for o in applied if o["record"] in theirs)
    assert [o["action"] for o in applied if o["record"] not in theirs] == ["enrolled"] * (len(enrols) - len(theirs))
    refused_calls = sum(1 for name, params in moodle.calls if name == "enrol_manual_enrol_users"
                        and any(int(item["userid"]) == old_id for item in params["enrolments"]))
    assert refused_calls <= 7 + len(theirs) - 1  # 40 halved down to the first; then one refused call for each other
    assert external_id not in select_user_links(engine, settings.key)

    outcomes = school_night(settings, moodle, engine, tmp_path / "n2")
    assert not [o for o in outcomes if o["action"] == "failed"]
    new_id = select_user_links(engine, settings.key)[external_id]
    assert new_id != old_id and moodle.users[new_id]["idnumber"] == external_id
    assert {o["record"] for o in outcomes if o["action"] == "enrolled"} == theirs


def test_a_database_refusing_every_write_stops_the_people_step_blames_nobody_and_the_next_night_creates_all(site):
    moodle, engine, run_dir = site
    settings = integration()
    provision_people_and_classes(settings, moodle, engine, run_dir)
    plan = read_json(run_dir / "outcomes/people.plan.json")
    creates = plan["creates"]
    moodle.database_refuses_writes = True
    with pytest.raises(SiteRefusesWritesError, match="dmlwriteexception.*owner: Moodle administrator"):
        people_sync.apply_people(settings, MoodleHook("moodle_steps"), engine, run_dir, "run-1")
    people_sync.record_user_links(settings, engine, run_dir, "run-1")
    applied = read_json(run_dir / "outcomes/people.apply.json")
    assert applied["refused"] == [] and len(applied["outcomes"]) == len(creates) + len(plan["updates"])
    assert not any("check this person" in o["reason"] for o in applied["outcomes"])
    moodle.database_refuses_writes = False  # the next night, the site fixed
    night = run_dir.parent / "night-2"
    night.mkdir()
    extract_school(engine, night)
    provision_people_and_classes(settings, moodle, engine, night)
    assert len(read_json(night / "outcomes/people.plan.json")["creates"]) == len(creates)
    assert people_sync.apply_people(settings, MoodleHook("moodle_steps"), engine, night, "run-2")["created"] == \
        len(creates)


def test_a_class_moodle_refused_is_quarantined_the_next_night_and_sent_again_once_changed(site):
    moodle, engine, run_dir = site
    settings = integration()

    def night(name: str) -> tuple:
        folder = run_dir.parent / name
        folder.mkdir()
        extract_school(engine, folder)
        provision_people_and_classes(settings, moodle, engine, folder)
        return folder, read_json(folder / "outcomes/classes.plan.json")

    provision_people_and_classes(settings, moodle, engine, run_dir)
    victim = read_json(run_dir / "outcomes/classes.plan.json")["creates"][0]
    taker = moodle.add_course(victim["shortname"], categoryid=victim["categoryid"])  # made after the read
    write_people_and_classes(settings, engine, run_dir)
    assert outcome_of(run_dir, "outcomes/classes.apply.json", victim["class_external_id"])["action"] == "failed"
    moodle.delete_course(taker["id"])

    second, plan = night("night-2")
    assert victim["class_external_id"] not in [item["class_external_id"] for item in plan["creates"]]
    held = [o for o in plan["outcomes"] if o["record"] == victim["class_external_id"]]
    assert [o["action"] for o in held] == ["quarantined"] and "shortnametaken" in held[0]["reason"]
    class_sync.apply_classes(settings, MoodleHook("moodle_steps"), engine, second, "run-2")
    class_sync.record_course_links(settings, engine, second, "run-2")
    assert not any(course["idnumber"] == victim["class_external_id"] for course in moodle.courses.values())

    with engine.begin() as connection:  # the MIS corrects the class
        connection.execute(text("UPDATE school_class SET name = 'Renamed' WHERE external_id = :id"),
                           {"id": victim["class_external_id"]})
    _, plan = night("night-3")
    assert victim["class_external_id"] in [item["class_external_id"] for item in plan["creates"]]
