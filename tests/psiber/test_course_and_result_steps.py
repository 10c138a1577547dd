"""Course and result steps on plain run files and a SQLite PSIber: validation, thresholds, exclusions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from airflow.sdk.exceptions import AirflowFailException
from sqlalchemy import create_engine, text

from factories import integration
from psiber import course_sync, result_sync
from psiber.demo_company import seed_demo_company
from psiber.psiber_db import select_watermark
from recorded_moodle import RecordedSite, answer
from sync_common.run_files import read_json, write_json
from sync_common.task_failures import fail_fast_unless_transient

NOW = 1_796_032_800  # 2026-11-30 10:00 UTC, a week after the live site's answers were recorded
SETTINGS = integration(safety={"max_invalid_share": 0.5})


def time_refused(message: str) -> str:
    return f"completion time could not be read ({message}); dated by its grading time, else the date of sync"


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    seed_demo_company(engine, employees=30)
    return engine


def course(course_id, code, **fields):
    return {"id": course_id, "shortname": code, "idnumber": code, "fullname": f"{code} course", "categoryid": 1,
            "visible": 1, "startdate": NOW - 86_400 * 30, "enddate": 0, "enablecompletion": 1, "format": "topics",
            "customfields": [], **fields}


def write_courses(run_dir, *courses):
    write_json(run_dir / "moodle_courses.json", [course(1, "site", format="site"), *courses])
    write_json(run_dir / "moodle_categories.json", [{"id": 1, "name": "Driver Training"}])


def test_an_invalid_moodle_course_is_reported_and_not_copied(engine, tmp_path):
    write_courses(tmp_path, course(5, "DRV-101"), course(6, "BAD", enddate=NOW - 86_400 * 60))
    course_sync.plan_courses(SETTINGS, engine, tmp_path)
    course_sync.load_courses(SETTINGS, engine, tmp_path)
    outcomes = read_json(tmp_path / "outcomes/courses.plan.json")["outcomes"]
    assert [(o["record"], o["action"], o["reason"]) for o in outcomes if o["action"] == "invalid"] == [
        ("BAD", "invalid", "course end date is before its start date")]
    codes = {row[0] for row in engine.connect().execute(text("SELECT course_code FROM course"))}
    assert codes == {"DRV-101"}


def test_too_many_invalid_courses_stop_the_run_after_listing_them(engine, tmp_path):
    write_courses(tmp_path, course(5, "A", idnumber="X"), course(6, "B", idnumber="X"), course(7, "C"))
    with pytest.raises(AirflowFailException, match=r"2 of 3 Moodle courses \(67%\) are invalid"):
        fail_fast_unless_transient(course_sync.plan_courses)(SETTINGS, engine, tmp_path)
    invalid = [o for o in read_json(tmp_path / "outcomes/courses.plan.json")["outcomes"] if o["action"] == "invalid"]
    assert [o["record"] for o in invalid] == ["X", "X"]
    assert "used by more than one Moodle course" in invalid[0]["reason"]


def test_results_with_bad_grades_or_future_completions_are_invalid_and_make_no_attempt(engine, tmp_path):
    write_courses(tmp_path, course(5, "DRV-101"))
    course_sync.plan_courses(SETTINGS, engine, tmp_path)
    course_sync.load_courses(SETTINGS, engine, tmp_path)
    write_json(tmp_path / "learners.json", {"started": NOW, "watermark": 0, "active": [100, 101, 102],
                                            "course_ids": [5], "links": {"100": [1, "EE00001"], "101": [2, "EE00002"],
                                                                         "102": [3, "EE00003"]}})
    (tmp_path / "grades").mkdir()
    write_json(tmp_path / "grades" / "courses-5.json", {"outcomes": [], "grades": [
        {"courseid": 5, "userid": 100, "graderaw": 80.0, "grademin": 0.0, "grademax": 100.0,
         "gradedategraded": NOW - 60},
        {"courseid": 5, "userid": 101, "graderaw": 150.0, "grademin": 0.0, "grademax": 100.0,
         "gradedategraded": NOW - 60},
        {"courseid": 5, "userid": 102, "graderaw": 90.0, "grademin": 0.0, "grademax": 100.0,
         "gradedategraded": NOW - 60}]})
    (tmp_path / "completions").mkdir()
    write_json(tmp_path / "completions" / "users-100.json", {"outcomes": [], "completions": [
        {"courseid": 5, "userid": 100, "completed": True, "timecompleted": NOW - 30},
        {"courseid": 5, "userid": 101, "completed": True, "timecompleted": NOW - 30},
        {"courseid": 5, "userid": 102, "completed": True, "timecompleted": NOW + 86_400}]})
    result_sync.plan_result_changes(SETTINGS, engine, tmp_path)
    plan = read_json(tmp_path / "outcomes/results.plan.json")
    assert [a["record"] for a in result_sync.planned_attempts(tmp_path)] == ["EE00001 / DRV-101"]
    assert sorted((o["record"], o["reason"]) for o in plan["outcomes"] if o["action"] == "invalid") == [
        ("EE00002 / DRV-101", "grade 150 is outside its range 0–100"),
        ("EE00003 / DRV-101", "completion time is in the future")]


def test_a_pass_result_missing_from_the_picklist_fails_fast_naming_the_setting(engine, tmp_path):
    write_courses(tmp_path, course(5, "DRV-101"))
    write_json(tmp_path / "learners.json", {"started": NOW, "watermark": 0, "active": [], "course_ids": [5],
                                            "links": {}})
    with pytest.raises(AirflowFailException, match=r"pass_result/fail_result \['Passed'\] are not values"):
        fail_fast_unless_transient(result_sync.plan_result_changes)(integration(pass_result="Passed"), engine,
                                                                     tmp_path)


def test_a_course_whose_grades_cannot_be_read_is_a_warning_and_the_batch_goes_on(tmp_path, monkeypatch):
    import json

    from moodle_provider.hooks.moodle import MoodleHook
    from moodle_stand_in import MoodleStandIn

    with MoodleStandIn("t0ken-t0ken-t0ken-t0ken") as moodle:
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "http", "host": moodle.base_url,
                                                              "password": "t0ken-t0ken-t0ken-t0ken"}))
        category = moodle.add_category("Driver Training")["id"]
        real = moodle.add_course("DRV-101", categoryid=category)["id"]
        user = moodle.add_user(username="thabo@example.com", email="thabo@example.com", idnumber="EE00001")
        moodle.enrol(user["id"], real)
        moodle.set_grade(real, user["id"], 80.0)
        write_json(tmp_path / result_sync.LINKED_USERS, {"started": 1, "user_ids": [user["id"]]})
        result = result_sync.read_course_grades(MoodleHook("moodle", backoff_seconds=0.01), tmp_path, [999, real])
    batch = read_json(tmp_path / "grades" / "courses-999.json")
    assert result == {"courses": 2, "grades": 1, "warnings": 1}
    assert [(g["courseid"], g["graderaw"]) for g in batch["grades"]] == [(real, 80.0)]
    [warning] = batch["outcomes"]
    assert warning["record"] == "Moodle course #999" and warning["reason"].startswith("grades could not be read")


class _SiteAnswering:
    """A hook whose completion-status call is refused with ``errorcode``."""

    def __init__(self, errorcode: str):
        self.errorcode = errorcode

    def call(self, wsfunction, **params):
        from moodle_provider.exceptions import MoodleRequestError

        if wsfunction == "core_enrol_get_users_courses":
            return [{"id": 5, "idnumber": "DRV-101", "shortname": "drv", "completed": True},
                    {"id": 6, "idnumber": "HS-1", "shortname": "hs", "completed": False, "enablecompletion": True,
                     "completionhascriteria": False}]
        raise MoodleRequestError("refused", errorcode=self.errorcode, wsfunction=wsfunction)


@pytest.mark.parametrize(("errorcode", "record", "reason"), [
    ("nocriteriaset", "DRV-101", "Course completion criteria not defined: refused"),
    ("usernotenroled", "EE00001 / DRV-101", time_refused("refused")),
])
def test_a_refused_completion_time_is_a_warning_and_the_completion_still_counts(engine, tmp_path, errorcode,
                                                                                record, reason):
    write_json(tmp_path / "learners.json", {"links": {"100": [1, "EE00001"]}})
    result_sync.read_completions(SETTINGS, _SiteAnswering(errorcode), engine, tmp_path, [100])
    batch = read_json(tmp_path / "completions" / "users-100.json")
    assert [(c["courseid"], c["completed"], c["timecompleted"]) for c in batch["completions"]] == [
        (5, True, None), (6, False, None)]
    assert [(o["record"], o["reason"]) for o in batch["outcomes"]] == [
        (record, reason),
        ("HS-1", "Course completion criteria not defined: completion tracking is on but has no criteria, "
                 "so nobody can complete it")]


def test_a_result_read_again_with_a_vaguer_date_leaves_the_completion_date_alone(engine, tmp_path):
    from datetime import date

    from psiber.psiber_db import save_result_parts

    write_courses(tmp_path, course(5, "DRV-101"))
    course_sync.plan_courses(SETTINGS, engine, tmp_path)
    course_sync.load_courses(SETTINGS, engine, tmp_path)

    def result(day):
        attempt = {"attempt_key": "moodle:k:5:100:pass:80.0", "employee_id": 1, "course_code": "DRV-101",
                   "attempt_date": day, "result": "Competent", "grade": 80.0}
        return [attempt], [{"attempt_key": attempt["attempt_key"], "employee_id": 1, "course_code": "DRV-101",
                            "completed_on": day, "result": "Competent"}]

    assert save_result_parts(engine, "k", [result(date(2026, 11, 3))], synced_until=1)[1] == 1
    assert save_result_parts(engine, "k", [result(date(2026, 11, 23))], synced_until=2) == ([], 0)
    stored = engine.connect().execute(text("SELECT completed_on FROM course_completion")).scalar_one()
    assert str(stored).startswith("2026-11-03")


def test_a_restored_course_is_relinked_in_psiber(engine, tmp_path):
    write_courses(tmp_path, course(5, "DRV-101"))
    course_sync.plan_courses(SETTINGS, engine, tmp_path)
    course_sync.load_courses(SETTINGS, engine, tmp_path)
    write_courses(tmp_path, course(9, "DRV-101"))
    course_sync.plan_courses(SETTINGS, engine, tmp_path)
    course_sync.load_courses(SETTINGS, engine, tmp_path)
    rows = engine.connect().execute(text("SELECT course_code, moodle_course_id, status FROM course")).all()
    assert [tuple(row) for row in rows] == [("DRV-101", 9, "Active")]


def test_full_result_reads_come_by_themselves_and_an_incomplete_read_holds_the_watermark(engine, tmp_path,
                                                                                          monkeypatch):
    import json

    from moodle_provider.hooks.moodle import MoodleHook
    from moodle_stand_in import MoodleStandIn
    from psiber.psiber_db import select_watermark, upsert_user_links

    def load(reads_complete: bool) -> None:
        write_json(tmp_path / "outcomes/results.plan.json", {"reads_complete": reads_complete, "parts": [],
                                                                             "in_progress": 0, "outcomes": []})
        result_sync.load_results(SETTINGS, engine, tmp_path)

    write_json(tmp_path / "moodle_courses.json", [])
    with MoodleStandIn("t0ken-t0ken-t0ken-t0ken") as moodle:
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "http", "host": moodle.base_url,
                                                              "password": "t0ken-t0ken-t0ken-t0ken"}))
        user = moodle.add_user(username="thabo@example.com", email="thabo@example.com", idnumber="EE00001")
        upsert_user_links(engine, SETTINGS.key, [(1, user["id"], "thabo@example.com")])
        hook = MoodleHook("moodle", backoff_seconds=0.01)

        first = result_sync.find_changed_learners(SETTINGS, hook, engine, tmp_path, full=False)
        assert first["full"] is True  # never read in full yet
        load(reads_complete=True)
        stored = select_watermark(engine, SETTINGS.key, "results")
        assert stored == read_json(tmp_path / "learners.json")["started"] - result_sync.WATERMARK_OVERLAP_SECONDS

        second = result_sync.find_changed_learners(SETTINGS, hook, engine, tmp_path, full=False)
        assert second == {"linked": 1, "active": 0, "watermark": stored, "full": False}
        with engine.begin() as connection:  # a week later
            connection.execute(text("UPDATE sync_watermark SET synced_until = synced_until - 8 * 86400 "
                                    "WHERE flow = 'results_full'"))
        assert result_sync.find_changed_learners(SETTINGS, hook, engine, tmp_path, full=False)["full"] is True

        result_sync.find_changed_learners(SETTINGS, hook, engine, tmp_path, full=False)
        load(reads_complete=False)
        assert select_watermark(engine, SETTINGS.key, "results") == stored


# --------------------------------------------------------------------------- a live Moodle 4.5 site's answers

LIVE = integration(courses={"custom_field_matches": [{"moodle_field": "passrate", "psiber_element": "min_pass_rate"}]})


def live_site(grades: dict, completion_status: dict | None = None) -> tuple[RecordedSite, list[int]]:
    """The contract courses (CT-GRADED: Pass Rate 70, id 9): ``grades`` is CT-GRADED's gradebook; its first
    learner completed CT-GRADED (recording 60, progress 100), its second has not (61)."""
    site = RecordedSite()
    site.answer(grades, "gradereport_user_get_grade_items", courseid=9)
    first, second = [int(user["userid"]) for user in grades["usergrades"]]
    site.answer(answer("60-get-users-courses"), "core_enrol_get_users_courses", userid=first)
    site.answer(answer("61-get-users-courses-suspended-enrolment"), "core_enrol_get_users_courses", userid=second)
    site.answer(completion_status or answer("70-completion-status-complete"),
                "core_completion_get_course_completion_status", courseid=9, userid=first)
    return site, [first, second]


def sync_live_results(engine, run_dir, site: RecordedSite, users: list[int]) -> dict:
    """Courses (recording 79) into PSIber, then the results steps on the site's answers; the loaded counts."""
    write_json(run_dir / "moodle_courses.json", answer("79-get-courses-contract-courses"))
    write_json(run_dir / "moodle_categories.json", answer("77-get-categories-by-id-with-subcategories"))
    course_sync.plan_courses(LIVE, engine, run_dir)
    course_sync.load_courses(LIVE, engine, run_dir)
    write_json(run_dir / "learners.json", {
        "started": NOW, "watermark": 0, "stored_watermark": 0, "full": True, "active": users,
        "course_ids": [9, 10, 11, 12], "links": {str(user): [n, f"EE0000{n}"] for n, user in enumerate(users, 1)}})
    write_json(run_dir / result_sync.LINKED_USERS, {"started": NOW, "user_ids": users})
    result_sync.read_course_grades(site, run_dir, [9])
    result_sync.read_completions(LIVE, site, engine, run_dir, users)
    result_sync.plan_result_changes(LIVE, engine, run_dir)
    return result_sync.load_results(LIVE, engine, run_dir)


def course_total(grades: dict, user: int) -> dict:
    return grades["usergrades"][user]["gradeitems"][-1]


def stored_as_entered(grades: dict) -> dict:
    course_total(grades, 0)["graderaw"] = 72.5  # the override before Moodle brought it into the 0–0 range
    return grades


def failed_45(grades: dict) -> dict:
    for item in grades["usergrades"][0]["gradeitems"]:
        item["graderaw"] = 45  # a whole number: a JSON integer
    return grades


@pytest.mark.parametrize(("recording", "change", "expected"), [
    ("66x-grade-items-no-grade-items-override-clamped", None, ("Competent", None)),
    ("66x-grade-items-no-grade-items-override-clamped", stored_as_entered, ("Competent", None)),
    ("66-grade-items-all-users", None, ("Competent", 72.5)),  # the graded item comes before the course total
    ("66-grade-items-all-users", failed_45, ("Not Yet Competent", 45.0)),
])
def test_results_as_a_live_site_answers_them(engine, tmp_path, recording, change, expected):
    grades = answer(recording)
    grades = change(grades) if change else grades
    site, users = live_site(grades)
    counts = sync_live_results(engine, tmp_path, site, users)
    plan = read_json(tmp_path / "outcomes/results.plan.json")
    assert [(a["record"], a["result"], a["grade"], a["attempt_date"]) for a in result_sync.planned_attempts(tmp_path)
            ] == [("EE00001 / CTG", *expected, "2026-08-30")]  # completed on 1788086400
    assert [(o["record"], o["action"], o["reason"]) for o in plan["outcomes"]] == [
        ("CT-NOCRIT", "warning", "Course completion criteria not defined: completion tracking is on but has no "
                                 "criteria, so nobody can complete it")]
    assert plan["reads_complete"]
    assert counts == {"new_attempts": 1, "already_recorded": 0, "completions_changed": 1, "in_progress": 3}
    [batch] = (tmp_path / "completions").glob("*.json")
    assert sorted((c["userid"] == users[0], c["courseid"], c["completed"]) for c in read_json(batch)["completions"]) \
        == [(False, 9, False), (True, 9, True), (True, 10, False), (True, 11, False)]  # 11: completion off (null)


@pytest.mark.parametrize(("recording", "record", "reason"), [
    ("72-completion-status-no-criteria", "CTG",
     "Course completion criteria not defined: No completion criteria set for this course"),
    ("73-completion-status-completion-disabled", "EE00001 / CTG",
     time_refused("You cannot view this report")),
    ("74-completion-status-not-enrolled", "EE00001 / CTG",
     time_refused("User is not enrolled in this course")),
    ("75-completion-status-suspended-enrolment", "EE00001 / CTG",
     time_refused("User is not enrolled in this course")),
    ("76-completion-status-teacher", "EE00001 / CTG",
     time_refused("User is not enrolled in this course")),
])
@pytest.mark.parametrize("graded", [True, False])
def test_a_completion_status_a_live_site_refuses_is_one_warning_and_the_run_goes_on(engine, tmp_path, recording,
                                                                                     record, reason, graded):
    """Between the course list saying "completed" and the status call, completion was switched off,
    its criteria removed, or the learner unenrolled: the completion counts, dated the day the teacher's
    override was graded (23 November, in the recording), or the day of sync when it was never graded."""
    grades = answer("66x-grade-items-no-grade-items-override-clamped")
    if not graded:
        course_total(grades, 0)["gradedategraded"] = None
    site, users = live_site(grades, answer(recording))
    counts = sync_live_results(engine, tmp_path, site, users)
    plan = read_json(tmp_path / "outcomes/results.plan.json")
    sync_day = datetime.fromtimestamp(NOW, UTC).date().isoformat()  # 2026-11-30
    assert [(a["record"], a["result"], a["attempt_date"]) for a in result_sync.planned_attempts(tmp_path)] == [
        ("EE00001 / CTG", "Competent", "2026-11-23" if graded else sync_day)]  # graded at 1795433117
    assert (record, "warning", reason) in [(o["record"], o["action"], o["reason"]) for o in plan["outcomes"]]
    assert counts["new_attempts"] == 1
    assert select_watermark(engine, LIVE.key, "results") == NOW - result_sync.WATERMARK_OVERLAP_SECONDS


def sync_stand_in_results(hook, engine, run_dir) -> dict:
    """The courses and results steps of a night against a stand-in, every linked learner read; the loaded counts."""
    course_sync.extract_moodle_courses(hook, run_dir)
    course_sync.plan_courses(LIVE, engine, run_dir)
    course_sync.load_courses(LIVE, engine, run_dir)
    result_sync.find_changed_learners(LIVE, hook, engine, run_dir, full=True, now=NOW)
    for batch in result_sync.grade_read_batches(LIVE, run_dir):
        result_sync.read_course_grades(hook, run_dir, batch)
    for batch in result_sync.completion_read_batches(LIVE, run_dir):
        result_sync.read_completions(LIVE, hook, engine, run_dir, batch)
    result_sync.plan_result_changes(LIVE, engine, run_dir)
    return result_sync.load_results(LIVE, engine, run_dir)


def test_courses_and_results_from_a_stand_in_that_answers_like_a_live_site(engine, tmp_path, monkeypatch):
    """Course rows in no order (site course last), a number field with a display template, a JSON-integer grade
    below the pass mark, and a course without grade items whose override Moodle stored as 0 in its 0–0 range."""
    import json

    from moodle_provider.hooks.moodle import MoodleHook
    from moodle_stand_in import MoodleStandIn
    from psiber.psiber_db import upsert_user_links

    with MoodleStandIn("t0ken-t0ken-t0ken-t0ken") as moodle:
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "http", "host": moodle.base_url,
                                                              "password": "t0ken-t0ken-t0ken-t0ken"}))
        [pass_rate] = [f for f in moodle.course_custom_fields if f["shortname"] == "passrate"]
        pass_rate.update(decimalplaces=1, display="{value} out of 100")
        category = moodle.add_category("Driver Training")["id"]
        graded = moodle.add_course("DRV-101", categoryid=category, idnumber="DRV-101", startdate=NOW - 86_400,
                                   customfields={"passrate": "70"})["id"]
        no_items = moodle.add_course("HS-1", categoryid=category, idnumber="HS-1", startdate=NOW - 86_400,
                                     customfields={"passrate": "60"})["id"]
        no_completion = moodle.add_course("ONB-1", categoryid=category, idnumber="ONB-1", enablecompletion=0)["id"]
        moodle.reorder_courses([no_items, no_completion, graded])  # the site course comes last
        thabo, lindi = (moodle.add_user(username=f"{name}@example.com", email=f"{name}@example.com",
                                        idnumber=number)["id"] for name, number in (("thabo", "EE00001"),
                                                                                    ("lindi", "EE00002")))
        for user in (thabo, lindi):
            for course_id in (graded, no_items, no_completion):
                moodle.enrol(user, course_id)
            moodle.touch(user, NOW - 600)
        moodle.set_grade(graded, thabo, 45, dategraded=NOW - 300)
        moodle.set_grade(no_items, thabo, 72.5, override=True, dategraded=NOW - 300)
        for course_id in (graded, no_items):
            moodle.complete(course_id, thabo, timecompleted=NOW - 200)
        upsert_user_links(engine, LIVE.key, [(1, thabo, "thabo@example.com"), (2, lindi, "lindi@example.com")])
        hook = MoodleHook("moodle", backoff_seconds=0.01)

        assert [c["id"] for c in hook.call("core_course_get_courses")] == [no_items, no_completion, graded, 1]
        counts = sync_stand_in_results(hook, engine, tmp_path)

    courses = read_json(tmp_path / "outcomes/courses.plan.json")["outcomes"]
    assert [(o["record"], o["action"]) for o in courses] == [  # by Moodle id, not in Moodle's order
        ("ONB-1", "warning"), ("DRV-101", "created"), ("HS-1", "created"), ("ONB-1", "created")]
    rates = dict(engine.connect().execute(text("SELECT course_code, min_pass_rate FROM course")).all())
    assert {code: rate if rate is None else float(rate) for code, rate in rates.items()} == {
        "DRV-101": 70.0, "HS-1": 60.0, "ONB-1": None}
    plan = read_json(tmp_path / "outcomes/results.plan.json")
    assert [(a["record"], a["result"], a["grade"]) for a in result_sync.planned_attempts(tmp_path)] == [
        ("EE00001 / DRV-101", "Not Yet Competent", 45.0), ("EE00001 / HS-1", "Competent", None)]
    assert [o for o in plan["outcomes"] if o["action"] == "invalid"] == [] and plan["reads_complete"]
    assert counts["new_attempts"] == 2


@pytest.mark.parametrize(("pass_rate", "result"), [("70", "Competent"), ("75", "Not Yet Competent")])
def test_an_override_that_kept_its_0_100_range_in_a_course_without_grade_items_is_judged_by_the_pass_mark(
        engine, tmp_path, monkeypatch, pass_rate, result):
    """Lab finding 04: a teacher's override made before the course's first regrade answers 72.5 of 100 live."""
    import json

    from moodle_provider.hooks.moodle import MoodleHook
    from moodle_stand_in import MoodleStandIn
    from psiber.psiber_db import upsert_user_links

    with MoodleStandIn("t0ken-t0ken-t0ken-t0ken") as moodle:
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "http", "host": moodle.base_url,
                                                              "password": "t0ken-t0ken-t0ken-t0ken"}))
        category = moodle.add_category("Compliance")["id"]
        course = moodle.add_course("NOGRADE-1", categoryid=category, idnumber="NOGRADE-1", startdate=NOW - 86_400,
                                   customfields={"passrate": pass_rate})["id"]
        zanele = moodle.add_user(username="zanele@example.com", email="zanele@example.com", idnumber="EE00001")["id"]
        moodle.enrol(zanele, course)
        moodle.touch(zanele, NOW - 600)
        moodle.set_grade(course, zanele, 72.5, override=True, before_first_regrade=True, dategraded=NOW - 300)
        moodle.complete(course, zanele, timecompleted=NOW - 200)
        upsert_user_links(engine, LIVE.key, [(1, zanele, "zanele@example.com")])
        sync_stand_in_results(MoodleHook("moodle", backoff_seconds=0.01), engine, tmp_path)

    assert [(a["record"], a["result"], a["grade"]) for a in result_sync.planned_attempts(tmp_path)] == [
        ("EE00001 / NOGRADE-1", result, 72.5)]


def test_a_completion_read_asks_psiber_only_for_its_own_learners_completions(engine, tmp_path):
    from datetime import date

    from psiber.psiber_db import save_result_parts, select_moodle_completions

    write_courses(tmp_path, course(5, "DRV-101"))
    course_sync.plan_courses(SETTINGS, engine, tmp_path)
    course_sync.load_courses(SETTINGS, engine, tmp_path)
    for employee in (1, 2):
        key = f"moodle:{SETTINGS.key}:5:{employee}:pass:None"
        save_result_parts(engine, SETTINGS.key, [([
            {"attempt_key": key, "employee_id": employee, "course_code": "DRV-101", "attempt_date": date(2026, 11, 3),
             "result": "Competent", "grade": None}], [
            {"attempt_key": key, "employee_id": employee, "course_code": "DRV-101", "completed_on": date(2026, 11, 3),
             "result": "Competent"}])], synced_until=1)
    assert select_moodle_completions(engine, SETTINGS.key, [1, 3]) == {(1, 5)}


def test_a_night_checks_only_the_grades_it_plans_and_weighs_a_bad_one_against_every_grade_read(engine, tmp_path):
    """Learner 100 was active (their completion read); 101 and 102 were graded long ago, 102 out of range: the
    night plans 100 alone, leaves 102's old grade unreported, and one bad grade of three read stays under 50 %."""
    write_courses(tmp_path, course(5, "DRV-101"))
    course_sync.plan_courses(SETTINGS, engine, tmp_path)
    course_sync.load_courses(SETTINGS, engine, tmp_path)
    write_json(tmp_path / "learners.json", {"started": NOW, "watermark": NOW - 86_400, "active": [100],
                                            "course_ids": [5], "links": {"100": [1, "EE00001"], "101": [2, "EE00002"],
                                                                         "102": [3, "EE00003"]}})
    (tmp_path / "grades").mkdir()
    write_json(tmp_path / "grades" / "courses-5.json", {"outcomes": [], "grades": [
        {"courseid": 5, "userid": user, "graderaw": grade, "grademin": 0.0, "grademax": 100.0,
         "gradedategraded": graded} for user, grade, graded in ((100, 250.0, NOW - 60), (101, 80.0, NOW - 90 * 86_400),
                                                                (102, 150.0, NOW - 90 * 86_400))]})
    (tmp_path / "completions").mkdir()
    write_json(tmp_path / "completions" / "users-100.json", {"outcomes": [], "completions": [
        {"courseid": 5, "userid": 100, "completed": True, "timecompleted": NOW - 30}]})
    result_sync.plan_result_changes(SETTINGS, engine, tmp_path)
    plan = read_json(tmp_path / "outcomes/results.plan.json")
    assert [(o["record"], o["action"]) for o in plan["outcomes"]] == [("EE00001 / DRV-101", "invalid")]
    assert plan["parts"] == []
