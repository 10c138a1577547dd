from datetime import date

import pytest

from psiber.result_plan import FAIL, PASS, course_verdict, grade_percent, plan_results, without_empty_range
from recorded_moodle import answer

NOW = 1_780_000_000
LINKS = {100: (1, "EE00001"), 101: (2, "EE00002")}
COURSES = {5: {"course_code": "DRV-101", "min_pass_rate": 70, "enddate": 0},
           6: {"course_code": "HS-1", "min_pass_rate": None, "enddate": NOW - 10}}


@pytest.mark.parametrize(("completed", "percent", "pass_mark", "ended", "verdict"), [
    (True, 85.0, 70, False, PASS),      # completed with a passing grade
    (True, None, 70, False, PASS),      # completed, no grade item
    (True, 60.0, None, False, PASS),    # completed, no pass mark known: completion is the pass
    (True, 60.0, 70, False, FAIL),      # completed, final grade below the passing grade
    (False, 60.0, 70, True, FAIL),      # course over, final grade below the passing grade
    (False, 60.0, 70, False, None),     # in progress
    (False, 90.0, 70, True, None),      # graded high but never completed: no verdict
    (False, None, None, True, None),
])
def test_the_pass_fail_rule(completed, percent, pass_mark, ended, verdict):
    assert course_verdict(completed, percent, pass_mark, ended) == verdict


def test_grade_percent_uses_the_grade_range():
    assert grade_percent(15, 0, 20) == 75.0
    assert grade_percent(None, 0, 100) is None
    assert grade_percent(5, 5, 5) is None


def plan(grades=(), completions=(), changed_since=0):
    return plan_results(integration_key="drv", links=LINKS, courses=COURSES, grades=list(grades),
                        completions=list(completions), changed_since=changed_since, pass_result="Competent",
                        fail_result="Not Yet Competent", sync_date=date(2026, 11, 23), now=NOW)


def grade(course, user, raw, when=NOW - 500):
    return {"courseid": course, "userid": user, "graderaw": raw, "grademin": 0, "grademax": 100,
            "gradedategraded": when}


def test_completion_with_a_passing_grade_is_one_pass_attempt_dated_by_moodle():
    result = plan(grades=[grade(5, 100, 80)],
                  completions=[{"courseid": 5, "userid": 100, "completed": True, "timecompleted": 1767225600}])
    [attempt] = result.attempts
    assert attempt == {"attempt_key": "moodle:drv:5:100:pass:80.0", "employee_id": 1, "course_code": "DRV-101",
                       "attempt_date": date(2026, 1, 1), "result": "Competent", "grade": 80.0,
                       "record": "EE00001 / DRV-101"}
    assert result.completions == [{"attempt_key": "moodle:drv:5:100:pass:80.0", "employee_id": 1,
                                   "course_code": "DRV-101", "completed_on": date(2026, 1, 1), "result": "Competent"}]


def test_same_result_gives_the_same_key_and_a_changed_grade_a_new_one():
    first = plan(grades=[grade(5, 100, 80)], completions=[{"courseid": 5, "userid": 100, "completed": True,
                                                           "timecompleted": 1767225600}])
    again = plan(grades=[grade(5, 100, 80)], completions=[{"courseid": 5, "userid": 100, "completed": True,
                                                           "timecompleted": None}])
    changed = plan(grades=[grade(5, 100, 65)], completions=[{"courseid": 5, "userid": 100, "completed": True,
                                                             "timecompleted": None}])
    assert first.attempts[0]["attempt_key"] == again.attempts[0]["attempt_key"]
    assert changed.attempts[0]["attempt_key"] == "moodle:drv:5:100:fail:65.0"
    assert changed.attempts[0]["result"] == "Not Yet Competent"


def test_no_moodle_time_means_the_date_of_sync():
    result = plan(completions=[{"courseid": 6, "userid": 101, "completed": True, "timecompleted": None}])
    assert result.attempts[0]["attempt_date"] == date(2026, 11, 23)


def test_graded_after_the_watermark_is_evaluated_even_without_a_completion_read():
    result = plan(grades=[grade(6, 101, 40, when=NOW - 5), grade(5, 100, 90, when=NOW - 5000)],
                  changed_since=NOW - 100)
    assert result.attempts == [] and result.in_progress == 1


def test_unlinked_users_are_ignored_and_unknown_courses_skipped():
    result = plan(completions=[{"courseid": 5, "userid": 999, "completed": True},
                               {"courseid": 77, "userid": 100, "completed": True}])
    assert result.attempts == []
    assert [(o.record, o.action, o.flow) for o in result.outcomes] == [
        ("EE00001 / Moodle course #77", "skipped", "results")]


def test_attempt_dates_are_days_in_the_sites_time_zone():
    from zoneinfo import ZoneInfo

    completion = [{"courseid": 5, "userid": 100, "completed": True, "timecompleted": 1772407800}]  # 01:30 SAST
    utc = plan(completions=completion).attempts[0]["attempt_date"]
    sast = plan_results(integration_key="drv", links=LINKS, courses=COURSES, grades=[], completions=completion,
                        changed_since=0, pass_result="Competent", fail_result="Not Yet Competent",
                        sync_date=date(2026, 11, 23), now=NOW, zone=ZoneInfo("Africa/Johannesburg"))
    assert (utc, sast.attempts[0]["attempt_date"]) == (date(2026, 3, 1), date(2026, 3, 2))


def test_a_course_total_with_a_zero_to_zero_range_is_no_grade():
    [clamped, ungraded] = [user["gradeitems"][-1] for user in
                           answer("66x-grade-items-no-grade-items-override-clamped")["usergrades"]]
    assert (clamped["graderaw"], clamped["grademin"], clamped["grademax"]) == (0, 0, 0)  # a teacher's 72.5
    assert without_empty_range(clamped)["graderaw"] is None
    assert without_empty_range({**clamped, "graderaw": 72.5})["graderaw"] is None
    assert without_empty_range(clamped)["gradedategraded"] == clamped["gradedategraded"]
    assert without_empty_range(ungraded) == ungraded
    real = {"graderaw": 0, "grademin": 0, "grademax": 100}
    assert without_empty_range(real) is real


def test_no_verdict_is_judged_from_a_zero_to_zero_range():
    ended = {**COURSES[5], "enddate": NOW - 10}
    empty_range = {"courseid": 5, "userid": 100, "graderaw": 0, "grademin": 0, "grademax": 0,
                   "gradedategraded": NOW - 500}

    def verdict(completed: bool):
        result = plan_results(integration_key="drv", links=LINKS, courses={5: ended},
                              grades=[without_empty_range(empty_range)],
                              completions=[{"courseid": 5, "userid": 100, "completed": completed,
                                            "timecompleted": None}],
                              changed_since=0, pass_result="Competent", fail_result="Not Yet Competent",
                              sync_date=date(2026, 11, 23), now=NOW)
        return [(a["result"], a["grade"]) for a in result.attempts], result.in_progress

    assert verdict(completed=True) == ([("Competent", None)], 0)  # completion is the pass, not a grade of 0
    assert verdict(completed=False) == ([], 1)  # over, but no grade to fail on


def test_whole_number_grades_sent_as_json_integers_are_the_same_result_as_floats():
    completed = [{"courseid": 5, "userid": 100, "completed": True, "timecompleted": None}]
    as_int = plan(grades=[{**grade(5, 100, 45), "grademin": 0, "grademax": 100}], completions=completed)
    as_float = plan(grades=[{**grade(5, 100, 45.0), "grademin": 0.0, "grademax": 100.0}], completions=completed)
    assert as_int.attempts == as_float.attempts
    assert as_int.attempts[0]["attempt_key"] == "moodle:drv:5:100:fail:45.0"
