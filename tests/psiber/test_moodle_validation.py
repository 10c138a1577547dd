"""The GX rules for Moodle courses, grades and completions: one small table per rule."""

import pandas as pd
import pytest

from psiber.moodle_validation import (
    COMPLETION_COLUMNS,
    COURSE_CODE_MISSING,
    COURSE_COLUMNS,
    COURSE_ENDS_BEFORE_START,
    COURSE_NAME_MISSING,
    COURSE_VISIBILITY,
    GRADE_COLUMNS,
    GRADED_IN_FUTURE,
    validate_completions,
    validate_course_grades,
    validate_moodle_courses,
)
from psiber.result_plan import without_empty_range
from recorded_moodle import answer as recorded
from sync_common.validation import FrameValidation, RecordProblem

NOW = 1_750_000_000
MOODLE_ADMIN = "Moodle administrator"


def assert_split(result: FrameValidation, frame: pd.DataFrame, bad_rows: list[int], *problems: RecordProblem):
    """Exactly the given problems, for the rows at ``bad_rows``; the other rows pass untouched."""
    assert result.invalid == problems
    assert result.checked == len(frame)
    pd.testing.assert_frame_equal(result.valid, frame.drop(index=frame.index[bad_rows]))
    pd.testing.assert_frame_equal(result.rejected, frame.iloc[bad_rows])


def course(course_id: int, **overrides) -> dict:
    record = {
        "id": course_id,
        "code": f"DRV-{course_id:03d}",
        "fullname": "Defensive driving",
        "startdate": NOW - 86_400,
        "enddate": NOW + 86_400,
        "visible": 1,
    }
    return record | overrides


def courses(*records: dict) -> pd.DataFrame:
    return pd.DataFrame(list(records), columns=list(COURSE_COLUMNS))


def course_problem(record: str, *reasons: str) -> RecordProblem:
    return RecordProblem(record, reasons, MOODLE_ADMIN)


def test_good_courses_are_all_valid():
    frame = courses(
        course(1),
        course(2, enddate=0),  # no end date
        course(3, startdate=0, enddate=0),
        course(4, enddate=NOW - 86_400),  # ends the day it starts
        course(5, visible=0),
    )
    assert_split(validate_moodle_courses(frame), frame, [])


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"code": None}, course_problem("Moodle course #2", COURSE_CODE_MISSING)),
        ({"code": "  "}, course_problem("Moodle course #2", COURSE_CODE_MISSING)),
        ({"fullname": None}, course_problem("DRV-002", COURSE_NAME_MISSING)),
        ({"fullname": ""}, course_problem("DRV-002", COURSE_NAME_MISSING)),
        ({"visible": 2}, course_problem("DRV-002", COURSE_VISIBILITY)),
        ({"enddate": NOW - 86_401}, course_problem("DRV-002", COURSE_ENDS_BEFORE_START)),
    ],
)
def test_each_course_rule_rejects_the_breaking_course(overrides, problem):
    frame = courses(course(1), course(2, **overrides), course(3))
    assert_split(validate_moodle_courses(frame), frame, [1], problem)


def test_course_reason_texts():
    assert COURSE_CODE_MISSING == "course ID number and short name are both empty"
    assert COURSE_NAME_MISSING == "course full name is missing"
    assert COURSE_ENDS_BEFORE_START == "course end date is before its start date"


def test_a_shared_course_code_flags_every_course_that_uses_it():
    frame = courses(course(1), course(2, code="DRV-001"), course(3))
    reason = "course identifier DRV-001 is used by more than one Moodle course; give each its own ID number"
    assert_split(
        validate_moodle_courses(frame), frame, [0, 1],
        course_problem("DRV-001", reason), course_problem("DRV-001", reason),
    )


def test_empty_course_codes_are_missing_not_duplicates():
    """GX 1.24's unique check skips nulls, and blanks are made nulls, so two courses without
    a code are each reported once, as missing, not as sharing the code ""."""
    frame = courses(course(1, code=None), course(2, code=""), course(3, code=" "), course(4))
    assert_split(
        validate_moodle_courses(frame), frame, [0, 1, 2],
        course_problem("Moodle course #1", COURSE_CODE_MISSING),
        course_problem("Moodle course #2", COURSE_CODE_MISSING),
        course_problem("Moodle course #3", COURSE_CODE_MISSING),
    )


def test_a_course_breaking_two_rules_gets_both_reasons():
    frame = courses(course(1, fullname=None, visible=5), course(2))
    assert_split(
        validate_moodle_courses(frame), frame, [0],
        course_problem("DRV-001", COURSE_NAME_MISSING, COURSE_VISIBILITY),
    )


def test_empty_course_frame_is_valid():
    result = validate_moodle_courses(courses())
    assert (result.checked, result.invalid, result.invalid_share) == (0, (), 0.0)
    assert result.valid.empty and list(result.valid.columns) == list(COURSE_COLUMNS)


def test_course_invalid_share():
    result = validate_moodle_courses(courses(course(1), course(2, fullname=None), course(3), course(4)))
    assert result.invalid_share == pytest.approx(0.25)


def test_a_missing_course_column_is_an_error_not_a_pass():
    with pytest.raises(ValueError, match="enddate"):
        validate_moodle_courses(courses(course(1)).drop(columns="enddate"))


def grade(user_id: int, **overrides) -> dict:
    record = {
        "courseid": 7,
        "userid": user_id,
        "graderaw": 7.5,
        "grademin": 0.0,
        "grademax": 10.0,
        "gradedategraded": NOW - 3_600,
        "record": f"EE{user_id:05d} / DRV-101",
    }
    return record | overrides


def grades(*records: dict) -> pd.DataFrame:
    return pd.DataFrame(list(records), columns=list(GRADE_COLUMNS))


def test_good_grades_are_all_valid():
    frame = grades(
        grade(1),
        grade(2, graderaw=None, gradedategraded=None),  # not graded yet
        grade(3, graderaw=0.0),
        grade(4, graderaw=10.0),
        grade(5, gradedategraded=NOW + 300),  # within the clock-skew allowance
    )
    assert_split(validate_course_grades(frame, NOW), frame, [])


@pytest.mark.parametrize(
    ("overrides", "reasons"),
    [
        ({"graderaw": 10.5}, ("grade 10.5 is outside its range 0–10",)),
        ({"graderaw": -1.0}, ("grade -1 is outside its range 0–10",)),
        ({"graderaw": 120.0, "grademax": 100.0}, ("grade 120 is outside its range 0–100",)),
        ({"gradedategraded": NOW + 301}, (GRADED_IN_FUTURE,)),
        ({"graderaw": 11.0, "gradedategraded": NOW + 3_600}, ("grade 11 is outside its range 0–10", GRADED_IN_FUTURE)),
    ],
)
def test_each_grade_rule_rejects_the_breaking_grade(overrides, reasons):
    frame = grades(grade(1), grade(2, **overrides), grade(3))
    assert_split(
        validate_course_grades(frame, NOW), frame, [1], RecordProblem("EE00002 / DRV-101", reasons, MOODLE_ADMIN)
    )


def test_grade_reason_texts():
    assert GRADED_IN_FUTURE == "grading time is in the future"


def test_an_inverted_grade_range_is_reported_once():
    """Below the minimum and above the maximum at once: two GX checks, one reason."""
    frame = grades(grade(1, graderaw=5.0, grademin=10.0, grademax=0.0))
    assert validate_course_grades(frame, NOW).invalid[0].reasons == ("grade 5 is outside its range 10–0",)


def test_a_grade_without_a_label_is_named_by_its_moodle_ids():
    frame = grades(grade(2, record=None, graderaw=11.0))
    problem = validate_course_grades(frame, NOW).invalid[0]
    assert problem.record == "Moodle user #2 in course #7"


def test_empty_grade_frame_is_valid():
    result = validate_course_grades(grades(), NOW)
    assert (result.checked, result.invalid, result.invalid_share) == (0, (), 0.0)


def test_grade_invalid_share():
    frame = grades(grade(1), grade(2, graderaw=11.0), grade(3, gradedategraded=NOW + 301), grade(4))
    assert validate_course_grades(frame, NOW).invalid_share == pytest.approx(0.5)


def completion(user_id: int, **overrides) -> dict:
    record = {
        "courseid": 7,
        "userid": user_id,
        "completed": True,
        "timecompleted": NOW - 3_600,
        "record": f"EE{user_id:05d} / DRV-101",
    }
    return record | overrides


def completions(*records: dict) -> pd.DataFrame:
    return pd.DataFrame(list(records), columns=list(COMPLETION_COLUMNS))


def test_good_completions_are_all_valid():
    frame = completions(
        completion(1),
        completion(2, completed=False, timecompleted=None),
        completion(3, timecompleted=NOW + 300),  # within the clock-skew allowance
    )
    assert_split(validate_completions(frame, NOW), frame, [])


def test_a_completion_in_the_future_is_rejected():
    frame = completions(completion(1), completion(2, timecompleted=NOW + 301), completion(3, timecompleted=None))
    assert_split(
        validate_completions(frame, NOW), frame, [1],
        RecordProblem("EE00002 / DRV-101", ("completion time is in the future",), MOODLE_ADMIN),
    )


def test_empty_completion_frame_is_valid():
    result = validate_completions(completions(), NOW)
    assert (result.checked, result.invalid, result.invalid_share) == (0, (), 0.0)


def test_completion_invalid_share():
    frame = completions(completion(1), completion(2, timecompleted=NOW + 301), completion(3), completion(4))
    assert validate_completions(frame, NOW).invalid_share == pytest.approx(0.25)


def test_validate_frame_reports_rows_by_position_even_with_repeated_index_labels():
    """The frame is validated with a positional index, so repeated labels map back to one row."""
    frame = grades(grade(1), grade(2, graderaw=11.0), grade(3))
    frame.index = [5, 5, 5]
    result = validate_course_grades(frame, NOW)
    assert [p.record for p in result.invalid] == ["EE00002 / DRV-101"]
    assert list(result.valid["userid"]) == [1, 3]
    assert list(result.rejected["userid"]) == [2]


def test_gx_errors_are_raised_not_passed():
    frame = completions(completion(1, timecompleted="yesterday"), completion(2))
    with pytest.raises(RuntimeError, match="timecompleted"):
        validate_completions(frame, NOW)


def test_course_totals_as_a_live_site_sends_them_are_valid_and_an_integer_out_of_range_is_named():
    """JSON integers for whole numbers (0, 100, 45), floats only for fractions (72.5), nulls when
    ungraded, and a 0–0 range (no grade items) taken as no grade."""
    totals = [(user["userid"], user["gradeitems"][-1])
              for name in ("66-grade-items-all-users", "66x-grade-items-no-grade-items-override-clamped")
              for user in recorded(name)["usergrades"]]
    rows = [without_empty_range(grade(userid, graderaw=item["graderaw"], grademin=item["grademin"],
                                      grademax=item["grademax"], gradedategraded=item["gradedategraded"] and NOW - 60))
            for userid, item in totals]
    rows.append(grade(9, graderaw=45, grademin=0, grademax=100))
    rows.append(without_empty_range(grade(10, graderaw=72.5, grademin=0, grademax=0)))
    frame = grades(*rows)
    assert_split(validate_course_grades(frame, NOW), frame, [])
    outside = grades(grade(1, graderaw=150, grademin=0, grademax=100), grade(2, graderaw=45, grademin=0, grademax=100))
    assert validate_course_grades(outside, NOW).invalid == (
        RecordProblem("EE00001 / DRV-101", ("grade 150 is outside its range 0–100",), MOODLE_ADMIN),)
