"""Rules Moodle courses, grades and completions must meet before they reach PSIber (GX expectations)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from sync_common.outcomes import OWNER_MOODLE_ADMIN
from sync_common.validation import FrameValidation, rule, validate_frame

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

COURSE_COLUMNS = ("id", "code", "fullname", "startdate", "enddate", "visible")
GRADE_COLUMNS = ("courseid", "userid", "graderaw", "grademin", "grademax", "gradedategraded", "record")
COMPLETION_COLUMNS = ("courseid", "userid", "completed", "timecompleted", "record")

# Moodle's clock and ours may drift apart; a time this little ahead is not "the future".
CLOCK_SKEW_SECONDS = 300

# Reasons are str.format templates filled from the failing row ("{code}" -> its code).
COURSE_CODE_MISSING = "course ID number and short name are both empty"
DUPLICATE_COURSE_CODE = (
    "course identifier {code} is used by more than one Moodle course; give each its own ID number"
)
COURSE_NAME_MISSING = "course full name is missing"
COURSE_VISIBILITY = "course visibility is neither 0 (hidden) nor 1 (shown)"
COURSE_ENDS_BEFORE_START = "course end date is before its start date"
GRADE_OUT_OF_RANGE = "grade {graderaw} is outside its range {grademin}–{grademax}"
GRADED_IN_FUTURE = "grading time is in the future"
COMPLETED_IN_FUTURE = "completion time is in the future"


def _course_rules() -> list[Expectation]:
    """Courses are matched to PSIber by ``code``, so it must be present and unique."""
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    x = gx.expectations
    return [
        rule(x.ExpectColumnValuesToNotBeNull, COURSE_CODE_MISSING, column="code"),
        # GX 1.24's unique check skips nulls, so empty codes are only reported above.
        rule(x.ExpectColumnValuesToBeUnique, DUPLICATE_COURSE_CODE, column="code"),
        rule(x.ExpectColumnValuesToNotBeNull, COURSE_NAME_MISSING, column="fullname"),
        rule(x.ExpectColumnValuesToBeInSet, COURSE_VISIBILITY, column="visible", value_set=[0, 1]),
        # An end date of 0 means "no end date".
        rule(
            x.ExpectColumnPairValuesAToBeGreaterThanB,
            COURSE_ENDS_BEFORE_START,
            column_A="enddate",
            column_B="startdate",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            row_condition=Column("enddate") != 0,
        ),
    ]


def _grade_rules(now: int) -> list[Expectation]:
    """A grade must lie within its item's range; a missing grade (ungraded) passes.

    GX has no "between two other columns", so the range is two column-pair checks with the
    same reason (a row failing both is reported once).
    """
    import great_expectations as gx

    x = gx.expectations
    pair = {"or_equal": True, "ignore_row_if": "either_value_is_missing"}
    return [
        rule(x.ExpectColumnPairValuesAToBeGreaterThanB, GRADE_OUT_OF_RANGE, column_A="graderaw",
             column_B="grademin", **pair),
        rule(x.ExpectColumnPairValuesAToBeGreaterThanB, GRADE_OUT_OF_RANGE, column_A="grademax",
             column_B="graderaw", **pair),
        # Map expectations skip nulls: an ungraded row has no grading time.
        rule(x.ExpectColumnValuesToBeBetween, GRADED_IN_FUTURE, column="gradedategraded",
             max_value=now + CLOCK_SKEW_SECONDS),
    ]


def _completion_rules(now: int) -> list[Expectation]:
    """A completion time ahead of now would push the results watermark past unseen results."""
    import great_expectations as gx

    x = gx.expectations
    return [
        rule(x.ExpectColumnValuesToBeBetween, COMPLETED_IN_FUTURE, column="timecompleted",
             max_value=now + CLOCK_SKEW_SECONDS),
    ]


def validate_moodle_courses(courses: pd.DataFrame) -> FrameValidation:
    """Check Moodle courses before they are mapped to PSIber courses (``COURSE_COLUMNS``);
    a course without a usable ``code`` is named by its Moodle id."""
    return validate_frame(courses, _course_rules, "code", OWNER_MOODLE_ADMIN, unnamed="Moodle course #{id}")


def validate_course_grades(grades: pd.DataFrame, now: int) -> FrameValidation:
    """Check course grades read from Moodle (``GRADE_COLUMNS``); ``now`` is unix seconds."""
    return validate_frame(
        grades, lambda: _grade_rules(now), "record", OWNER_MOODLE_ADMIN,
        unnamed="Moodle user #{userid} in course #{courseid}",
    )


def validate_completions(completions: pd.DataFrame, now: int) -> FrameValidation:
    """Check course completions read from Moodle (``COMPLETION_COLUMNS``); ``now`` is unix seconds."""
    return validate_frame(
        completions, lambda: _completion_rules(now), "record", OWNER_MOODLE_ADMIN,
        unnamed="Moodle user #{userid} in course #{courseid}",
    )
