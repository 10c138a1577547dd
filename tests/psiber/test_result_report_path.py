"""The results read from Report Builder reports write to PSIber what the per-user and per-course reads write, on
one stand-in site: a first full read, a night with a new completion, and a full read after a regrade.

The report's dates are to the minute in the token user's time zone (here London, the integration's Johannesburg);
PSIber keeps days, so the rows written are compared as they are. A completion one second before midnight in
Johannesburg stays on its day.
"""

from __future__ import annotations

import pytest
from result_sites import sync_results
from sqlalchemy import create_engine, text

from factories import integration
from moodle_provider.hooks.moodle import MoodleHook
from moodle_stand_in.reportbuilder import add_recipe_reports, start_completion
from psiber.demo_company import seed_demo_company
from psiber.psiber_db import upsert_user_links

NOW = 1_796_032_800  # 2026-11-30 10:00 UTC
DAY = 86_400
BEFORE_MIDNIGHT = 1_795_687_199  # 2026-11-26 21:59:59 UTC = 23:59:59 in Johannesburg


def settings(**extra):
    return integration(timezone="Africa/Johannesburg", courses={
        "custom_field_matches": [{"moodle_field": "passrate", "psiber_element": "min_pass_rate"}]}, **extra)


PER_USER = settings()
PEOPLE = (("thabo", "EE00001"), ("lindi", "EE00002"), ("sipho", "EE00003"), ("zanele", "EE00004"))


def written(engine) -> tuple[list, list]:
    """What the results flow wrote to PSIber: attempts and completions, without the moment they were written."""
    with engine.connect() as connection:
        attempts = connection.execute(text(
            "SELECT attempt_key, employee_id, course_code, attempt_date, result, grade FROM course_attempt "
            "ORDER BY attempt_key")).all()
        completions = connection.execute(text(
            "SELECT employee_id, course_code, completed_on, result FROM course_completion "
            "ORDER BY employee_id, course_code")).all()
    return [tuple(row) for row in attempts], [tuple(row) for row in completions]


@pytest.fixture
def site(moodle):
    """Four learners in four courses: a pass mark of 70 of 100, a course total out of 50 (36.123 is 72.246 %, which
    its display string "36.12" would make 72.24 %), an ended course failed without completing it, and a course with
    no grade at all; a teacher enrolled who is nobody's account in PSIber, and a completion started but not done."""
    category = moodle.add_category("Driver Training")["id"]

    def course(code: str, pass_rate: str, **fields) -> int:
        return moodle.add_course(code, categoryid=category, idnumber=code, startdate=NOW - 60 * DAY,
                                 customfields={"passrate": pass_rate}, **fields)["id"]

    courses = {"DRV-101": course("DRV-101", "70"), "HS-1": course("HS-1", "60"),
               "ENDED": course("ENDED", "70", enddate=NOW - 5 * DAY), "ONB-1": course("ONB-1", "50")}
    users = {name: moodle.add_user(username=f"{name}@example.com", email=f"{name}@example.com",
                                   idnumber=number)["id"] for name, number in PEOPLE}
    teacher = moodle.add_user(username="teacher@example.com", email="teacher@example.com")["id"]
    for user in users.values():
        for course_id in courses.values():
            moodle.enrol(user, course_id)
        moodle.touch(user, NOW - 2 * DAY)
    moodle.enrol(teacher, courses["DRV-101"], role="editingteacher")
    moodle.set_grade(courses["DRV-101"], users["thabo"], 45, dategraded=NOW - 8 * DAY)
    moodle.complete(courses["DRV-101"], users["thabo"], timecompleted=BEFORE_MIDNIGHT)
    moodle.set_grade(courses["DRV-101"], users["lindi"], 88.5, dategraded=NOW - 7 * DAY)
    moodle.complete(courses["DRV-101"], users["lindi"], timecompleted=NOW - 7 * DAY + 59)
    moodle.set_grade(courses["HS-1"], users["lindi"], 36.123, grademax=50, dategraded=NOW - 6 * DAY)
    moodle.complete(courses["HS-1"], users["lindi"], timecompleted=NOW - 6 * DAY)
    moodle.set_grade(courses["ENDED"], users["sipho"], 40, dategraded=NOW - 9 * DAY)
    moodle.complete(courses["ONB-1"], users["zanele"], timecompleted=NOW - 3 * DAY)
    start_completion(moodle, courses["DRV-101"], users["sipho"])
    reports = add_recipe_reports(moodle)
    moodle.users[moodle.token_user_id]["timezone"] = "Europe/London"  # the report's dates in London time
    return moodle, courses, users, reports


def psiber(tmp_path, name: str, users: dict):
    engine = create_engine(f"sqlite:///{tmp_path / f'{name}.db'}")
    seed_demo_company(engine, employees=20)
    upsert_user_links(engine, PER_USER.key, [(n, users[person], f"{person}@example.com")
                                             for n, (person, _) in enumerate(PEOPLE, 1)])
    return engine


def test_the_report_path_writes_what_the_per_user_path_writes(site, tmp_path):
    moodle, courses, users, reports = site
    from_report = settings(moodle_reports=reports)
    hook = MoodleHook("moodle", backoff_seconds=0.01)
    per_user_db, report_db = psiber(tmp_path, "per_user", users), psiber(tmp_path, "report", users)

    def both(now: int, full: bool) -> list[str]:
        """Each path's run on its own PSIber; the functions the report path called."""
        for path in ("per-user", "report"):
            (tmp_path / f"{path}-{now}").mkdir()
        sync_results(PER_USER, hook, per_user_db, tmp_path / f"per-user-{now}", full=full, now=now)
        start = len(moodle.calls)
        sync_results(from_report, hook, report_db, tmp_path / f"report-{now}", full=full, now=now)
        return [name for name, _ in moodle.calls[start:]]

    first = both(NOW, full=True)
    attempts, completions = written(report_db)
    assert written(per_user_db) == (attempts, completions)
    assert sorted((a[1], a[2], str(a[3]), a[4], a[5]) for a in attempts) == [
        (1, "DRV-101", "2026-11-26", "Not Yet Competent", 45), (2, "DRV-101", "2026-11-23", "Competent", 88.5),
        (2, "HS-1", "2026-11-24", "Competent", 72.25), (3, "ENDED", "2026-11-21", "Not Yet Competent", 40),
        (4, "ONB-1", "2026-11-27", "Competent", None)]
    assert "core_completion_get_course_completion_status" not in first
    assert "core_enrol_get_users_courses" not in first
    assert first.count("gradereport_user_get_grade_items") == 3  # ONB-1 has no grade to read

    moodle.set_grade(courses["HS-1"], users["thabo"], 30, grademax=50, dategraded=NOW + DAY - 900)
    moodle.complete(courses["HS-1"], users["thabo"], timecompleted=NOW + DAY - 600)
    moodle.touch(users["thabo"], NOW + DAY - 600)
    night = both(NOW + DAY, full=False)
    assert written(per_user_db) == written(report_db)
    assert len(written(report_db)[0]) == len(attempts) + 1
    assert "core_completion_get_course_completion_status" not in night

    moodle.set_grade(courses["DRV-101"], users["thabo"], 75, dategraded=NOW + 2 * DAY - 900)  # a regrade
    both(NOW + 2 * DAY, full=True)
    assert written(per_user_db) == written(report_db)
    [regraded] = [a for a in written(report_db)[0] if a[1] == 1 and a[2] == "DRV-101" and a[4] == "Competent"]
    assert str(regraded[3]) == "2026-12-02"  # a completion PSIber holds is dated by its new grading, on both paths
