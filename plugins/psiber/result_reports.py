"""The results flow's reads of Moodle's Report Builder custom reports (``moodle_reports`` in the integration file).

An enrolment-results report lists every enrolment with its completion in a few pages, where the per-user path asks
``core_enrol_get_users_courses`` once per learner and ``core_completion_get_course_completion_status`` once per
completion; filtered to the completions since a time, it tells a night what changed in one call whatever the
population. A user-access report filtered to a last access since a time lists who was active, where the per-user
path looks every linked user up, 200 at a time.

A report's filters are the token user's preference for that report, stored in Moodle: they are set (or reset)
right before each read, never assumed, and only by ``find_changed_learners``, which reads the reports one after
the other (no two readers with the same token set different filters at once).

Moodle accepts a filter the report does not have and ignores it (the call still answers ``true``): a report
without its "Time completed" or "Last access" filter would make every night read everyone. A row outside the
since-filter therefore stops the run, naming the report and the filter the administrator must add.

A report's dates are to the minute in the token user's time zone (``moodle_provider.report_builder``). PSIber
keeps days only (an attempt's date and a completion's day), and the day of a time does not change when its seconds
are dropped, so the report's times give the same days as the per-user calls' exact ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import ZoneInfo

from moodle_provider.hooks.moodle import MoodleHook
from moodle_provider.report_builder import (
    ENROLMENT_RESULTS,
    USER_ACCESS,
    EnrolmentResult,
    ReportLayout,
    ReportShapeError,
    UserAccess,
    read_report_rows,
)

_DATE_RANGE = 3  # Report Builder's date filter operator "Range": from (inclusive, seconds) to (0: no end)
TIME_COMPLETED = "completion:timecompleted"
LAST_ACCESS = "user:lastaccess"
_MINUTE = 60  # a report's times are cut to the minute: one up to 59 s before ``since`` may still be at or after it


def since_filter(field: str, since: int) -> dict[str, int]:
    """The filter form's values that keep the rows whose date ``field`` is at or after ``since``."""
    return {f"{field}_operator": _DATE_RANGE, f"{field}_from": since, f"{field}_to": 0}


def read_enrolments(hook: MoodleHook, report_id: int, since: int, zone: ZoneInfo) -> list[EnrolmentResult]:
    """Every enrolment of the report (``since`` 0), or those completed at or after ``since``."""
    if not since:
        hook.reset_report_filters(report_id)
        return read_report_rows(hook, report_id, ENROLMENT_RESULTS, zone=zone)
    hook.set_report_filters(report_id, since_filter(TIME_COMPLETED, since))
    rows = read_report_rows(hook, report_id, ENROLMENT_RESULTS, zone=zone)
    _check_filtered(report_id, ENROLMENT_RESULTS, "Time completed", since, (row.timecompleted for row in rows))
    return rows


def read_active_users(hook: MoodleHook, report_id: int, since: int, zone: ZoneInfo) -> list[UserAccess]:
    """The users of the report whose last access is at or after ``since``."""
    hook.set_report_filters(report_id, since_filter(LAST_ACCESS, since))
    rows = read_report_rows(hook, report_id, USER_ACCESS, zone=zone)
    _check_filtered(report_id, USER_ACCESS, "Last access", since, (row.lastaccess for row in rows))
    return rows


def _check_filtered(report_id: int, layout: ReportLayout, name: str, since: int, times: Iterable[int | None]) -> None:
    """Every row must be within the since-filter, else the report lacks it (Moodle ignored it without a word)."""
    if any(when is None or when + _MINUTE <= since for when in times):
        raise ReportShapeError(
            f"custom report {report_id} ({layout.name}) lists rows outside the filter '{name}' from {since} that the "
            f"run set, so it has no such filter: add the filter '{name}' to the report (its Filters tab; README: "
            "Report Builder reports)", wsfunction="core_reportbuilder_set_filters")


def completion_entries(rows: Iterable[EnrolmentResult], course_ids: dict[str, int],
                       linked: Iterable[int]) -> list[dict]:
    """The report's rows as the completion entries the per-user reads write, for linked users in known courses.

    ``course_ids``: Moodle course id by short name (unique on a site, and always set). A user enrolled by two
    methods is two rows of one enrolment: kept once. ``graded`` says whether the report shows a course total, so
    that only courses with a grade to read are read.
    """
    linked_users = set(linked)
    entries: dict[tuple[int, int], dict] = {}
    for row in rows:
        course_id = course_ids.get(row.course_shortname)
        if course_id is None or row.userid not in linked_users:
            continue
        completed = bool(row.completed)
        entry = entries.setdefault((course_id, row.userid), {
            "courseid": course_id, "userid": row.userid, "completed": completed,
            "timecompleted": row.timecompleted if completed else None, "graded": row.grade is not None})
        entry["graded"] = entry["graded"] or row.grade is not None
    return [entries[pair] for pair in sorted(entries)]
