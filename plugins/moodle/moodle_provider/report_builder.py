"""Moodle Report Builder custom reports read in bulk: their rows turned into typed records, and the checks a run
makes before it trusts a report.

A report's answer (``core_reportbuilder_retrieve_report``) is display strings matched by column position: the
administrator can rename and reorder columns, so the layout (count and kind of each column) is what is checked, and
header text is only advisory. Values are as the report page shows them:

* dates: ``"Friday, 27 November 2026, 7:53 PM"`` in the token user's time zone, to the **minute** (the seconds are
  lost, so a report's times are at most 59 s earlier than the per-user calls' Unix times); ``""`` when unset;
* course completion: ``"Yes"``, ``"No"``, or ``""`` when Moodle has no completion record (not completed either);
* grade: the course total with two decimals (``"72.50"``), ``""`` when none;
* text: HTML-escaped (``EE&quot;&amp;&lt;1&gt;``); the user's id is only in the "Full name with link" column's HTML
  (``<a href=".../user/profile.php?id=4">Emp No00001</a>``), whose name is not escaped.

Paging is stable only when the report sorts on unique columns (course short name and username), which the README's
recipe tells the administrator to enable.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from moodle_provider.exceptions import MoodleError, MoodleReportAccessError, MoodleReportMissingError

if TYPE_CHECKING:
    from moodle_provider.hooks.moodle import MoodleHook

_PROFILE_LINK = re.compile(r'^<a href="[^"]*/user/profile\.php\?id=(\d+)"[^>]*>(.*)</a>$', re.DOTALL)
# userdate() with strftimedaydatetime ("%A, %d %B %Y, %I:%M %p", English names, 12-hour clock), read without the
# process's locale, which may name days and months in another language
_DISPLAY_DATE = re.compile(r"^(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\d{1,2}) ([A-Z][a-z]+) "
                           r"(\d{4}), (\d{1,2}):(\d{2}) (AM|PM)$")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_GRADE = re.compile(r"^-?\d+(\.\d+)?$")
_COMPLETED = {"Yes": True, "No": False, "": None}
SITE_DEFAULT_TIME_ZONE = "99"  # a user's timezone field meaning "the site's", which web services do not tell


class ColumnKind(Enum):
    """What a report column holds, and so how its display string is read."""

    TEXT = "text"              # HTML-escaped text
    USER_LINK = "user link"    # "Full name with link": the user's id and unescaped full name
    DATE = "date"              # userdate() to the minute, "" when unset
    COMPLETED = "completed"    # "Yes" / "No" / ""
    GRADE = "grade"            # "72.50" / ""


@dataclass(frozen=True)
class ReportColumn:
    header: str  # the column's default heading in Moodle (advisory: an administrator may rename it)
    kind: ColumnKind
    field: str   # the record's attribute it fills


@dataclass(frozen=True)
class ReportLayout:
    """The columns a report must have, in order, and the record each row becomes."""

    name: str
    source: str  # the report's datasource class (``details.source``), which no administrator can rename
    source_name: str  # the same as the report builder's form names it
    columns: tuple[ReportColumn, ...]
    record: type

    @property
    def headers(self) -> tuple[str, ...]:
        return tuple(column.header for column in self.columns)


@dataclass(frozen=True)
class EnrolmentResult:
    """One user enrolment of the Course participants report (a user enrolled by two methods is two rows)."""

    course_idnumber: str
    course_shortname: str
    userid: int
    fullname: str
    username: str
    user_idnumber: str
    email: str
    timestarted: int | None
    completed: bool | None  # None: Moodle has no completion record for the enrolment (so not completed)
    timecompleted: int | None  # to the minute
    grade: float | None  # the course total


@dataclass(frozen=True)
class UserAccess:
    """One user of the Users report with the last time they were on the site."""

    userid: int
    fullname: str
    username: str
    user_idnumber: str
    lastaccess: int | None  # to the minute; None: never


def _columns(*columns: tuple[str, ColumnKind, str]) -> tuple[ReportColumn, ...]:
    return tuple(ReportColumn(header, kind, field) for header, kind, field in columns)


ENROLMENT_RESULTS = ReportLayout(
    "enrolment results", "core_course\\reportbuilder\\datasource\\participants", "Course participants", _columns(
    ("Course ID number", ColumnKind.TEXT, "course_idnumber"),
    ("Course short name", ColumnKind.TEXT, "course_shortname"),
    ("Full name with link", ColumnKind.USER_LINK, "userid"),
    ("Username", ColumnKind.TEXT, "username"),
    ("ID number", ColumnKind.TEXT, "user_idnumber"),
    ("Email address", ColumnKind.TEXT, "email"),
    ("Time started", ColumnKind.DATE, "timestarted"),
    ("Completed", ColumnKind.COMPLETED, "completed"),
    ("Time completed", ColumnKind.DATE, "timecompleted"),
    ("Grade", ColumnKind.GRADE, "grade"),
), EnrolmentResult)

USER_ACCESS = ReportLayout("user access", "core_user\\reportbuilder\\datasource\\users", "Users", _columns(
    ("Full name with link", ColumnKind.USER_LINK, "userid"),
    ("Username", ColumnKind.TEXT, "username"),
    ("ID number", ColumnKind.TEXT, "user_idnumber"),
    ("Last access", ColumnKind.DATE, "lastaccess"),
), UserAccess)


class ReportShapeError(MoodleError):
    """A report's answer does not fit the layout the integration reads it with: its columns were changed."""


class ReportTimeZoneError(MoodleError):
    """The token user's time zone, which a report's dates are written in, cannot be used to read them."""


def _shape_error(report_id: int, layout: ReportLayout, problem: str) -> ReportShapeError:
    return ReportShapeError(
        f"custom report {report_id} ({layout.name}) {problem}; it must have exactly these {len(layout.columns)} "
        f"columns in this order: {', '.join(layout.headers)} (README: Report Builder reports)",
        wsfunction="core_reportbuilder_retrieve_report")


def time_zone(name: str) -> ZoneInfo:
    """The zone a user's ``timezone`` field names; "99" (the site's default) is refused: web services do not say
    which zone the site uses."""
    if name == SITE_DEFAULT_TIME_ZONE:
        raise ReportTimeZoneError(
            "the web-service user's time zone is the site default, which web services do not tell, so the "
            "reports' dates cannot be read: set the user's Timezone (Site administration > Users > the web-service "
            "user > Edit profile) to UTC", wsfunction="core_user_get_users_by_field")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportTimeZoneError(
            f"the web-service user's time zone {name!r} is not a time zone name this system knows: set it to UTC",
            wsfunction="core_user_get_users_by_field") from None


def parse_display_date(text: str, zone: ZoneInfo) -> int | None:
    """A report's date string as Unix seconds (to the minute), None for ``""``. In a zone with summer time the
    hour repeated in autumn is ambiguous; it is read as its first occurrence (UTC has no such hour)."""
    if text == "":
        return None
    match = _DISPLAY_DATE.match(text)
    if not match or match.group(3) not in _MONTHS or not 1 <= int(match.group(5)) <= 12:
        raise ValueError(text)
    _, day, month, year, hour, minute, half = match.groups()
    hour24 = int(hour) % 12 + (12 if half == "PM" else 0)
    moment = datetime(int(year), _MONTHS.index(month) + 1, int(day), hour24, int(minute), tzinfo=zone)
    return int(moment.timestamp())


def _value(kind: ColumnKind, text: str, zone: ZoneInfo) -> Any:
    if kind is ColumnKind.TEXT:
        return html.unescape(text)
    if kind is ColumnKind.DATE:
        return parse_display_date(text, zone)
    if kind is ColumnKind.COMPLETED:
        return _COMPLETED[text]
    if kind is ColumnKind.GRADE:
        if text == "":
            return None
        if not _GRADE.match(text):
            raise ValueError(text)
        return float(text)
    match = _PROFILE_LINK.match(text)
    if not match:
        raise ValueError(text)
    return int(match.group(1)), match.group(2)


def parse_rows(report_id: int, layout: ReportLayout, rows: Sequence[dict[str, Any]], zone: ZoneInfo) -> list[Any]:
    """A page's ``data.rows`` as ``layout.record`` records; a row that does not fit names the report, the row and
    the column, for the Moodle administrator to fix."""
    records = []
    for number, row in enumerate(rows, 1):
        columns = row.get("columns") if isinstance(row, dict) else None
        if not isinstance(columns, list) or len(columns) != len(layout.columns):
            count = len(columns) if isinstance(columns, list) else "no"
            raise _shape_error(report_id, layout, f"answers rows of {count} columns")
        values: dict[str, Any] = {}
        for column, text in zip(layout.columns, columns, strict=True):
            try:
                value = _value(column.kind, text if isinstance(text, str) else repr(text), zone)
            except (KeyError, ValueError):
                raise _shape_error(report_id, layout, f"row {number}, column '{column.header}' holds {text!r}, "
                                                      f"not a {column.kind.value}") from None
            if column.kind is ColumnKind.USER_LINK:
                values[column.field], values["fullname"] = value
            else:
                values[column.field] = value
        records.append(layout.record(**values))
    return records


def token_user_time_zone(hook: MoodleHook) -> ZoneInfo:
    """The zone the token user's reports write dates in: that user's own ``timezone`` setting."""
    userid = hook.get_site_info()["userid"]
    users = hook.call("core_user_get_users_by_field", field="id", values=[userid])
    return time_zone(str(users[0].get("timezone", SITE_DEFAULT_TIME_ZONE)) if users else SITE_DEFAULT_TIME_ZONE)


class ReportChangedError(MoodleError):
    """The report's row count changed while it was read page by page, so pages may have skipped or repeated rows."""

    transient = True


def read_report_rows(hook: MoodleHook, report_id: int, layout: ReportLayout, perpage: int = 5000, *,
                     zone: ZoneInfo | None = None) -> list[Any]:
    """Every row of the report (with the token user's filters on it), page by page, as records.

    ``zone`` defaults to the token user's time zone asked of Moodle. A count that changes between pages means rows
    moved under the reader: raised as :class:`ReportChangedError` (transient: the task's retry reads it again)."""
    zone = zone or token_user_time_zone(hook)
    records: list[Any] = []
    total: int | None = None
    page = 0
    while total is None or len(records) < total:
        data = hook.retrieve_report(report_id, page=page, perpage=perpage)["data"]
        if total is not None and data["totalrowcount"] != total:
            raise ReportChangedError(
                f"custom report {report_id} ({layout.name}) changed while it was read: {total} rows, then "
                f"{data['totalrowcount']}", wsfunction="core_reportbuilder_retrieve_report")
        total = data["totalrowcount"]
        if page == 0:
            check_headers(report_id, layout, data["headers"])
        if not data["rows"]:
            break
        records += parse_rows(report_id, layout, data["rows"], zone)
        page += 1
    if len(records) != total:
        raise ReportChangedError(
            f"custom report {report_id} ({layout.name}) said {total} rows but its pages held {len(records)}",
            wsfunction="core_reportbuilder_retrieve_report")
    return records


def check_headers(report_id: int, layout: ReportLayout, headers: Sequence[str]) -> list[str]:
    """The column count must match; headings that differ from Moodle's defaults are returned (an administrator may
    rename a column) for the caller to log, the rows' shape decides."""
    if len(headers) != len(layout.columns):
        raise _shape_error(report_id, layout, f"has {len(headers)} columns ({', '.join(headers)})")
    return [f"column {number} is headed '{got}', not '{want}'"
            for number, (got, want) in enumerate(zip(headers, layout.headers, strict=True), 1) if got != want]


def check_report(hook: MoodleHook, report_id: int, layout: ReportLayout) -> list[str]:
    """Before a run reads the report: it exists, the token's user may view it, it is made from the layout's
    report source, and its columns fit ``layout`` (count, and the first row's values). Returns the advisory notes on
    renamed headings; raises a typed error naming the Moodle administrator's fix otherwise."""
    where = f"custom report {report_id} ({layout.name})"
    try:
        answer = hook.retrieve_report(report_id, page=0, perpage=1)
    except MoodleReportMissingError as error:
        raise MoodleReportMissingError(
            f"{where} does not exist: create it as the README's 'Report Builder reports' says and put its id in "
            "the integration's moodle_reports", errorcode=error.errorcode, wsfunction=error.wsfunction) from error
    except MoodleReportAccessError as error:
        raise MoodleReportAccessError(
            f"{where} is not shared with the web-service user: add an audience that includes that user (Audience "
            "tab) and keep the capability moodle/reportbuilder:view in its role", errorcode=error.errorcode,
            wsfunction=error.wsfunction) from error
    if answer["details"]["source"] != layout.source:
        raise _shape_error(report_id, layout, f"is made from the report source {answer['details']['sourcename']!r}, "
                                              f"not {layout.source_name!r}")
    notes = check_headers(report_id, layout, answer["data"]["headers"])
    parse_rows(report_id, layout, answer["data"]["rows"], ZoneInfo("UTC"))
    return notes
