"""Report Builder functions of the Moodle stand-in (custom reports an administrator made), held to the live 4.5.6
site's answers in ../shared/moodle-contract-reportbuilder (README there: recordings, quirks, latency).

Two datasources are modelled, with the columns the project's reports use:

* ``participants`` (Course participants): one row per user enrolment in a course (not the site course) of a user
  not deleted; columns ``course:idnumber``, ``course:shortname``, ``course:fullname``, ``user:fullnamewithlink``,
  ``user:username``, ``user:idnumber``, ``user:email``, ``enrolment:timestarted``, ``completion:completed``,
  ``completion:timecompleted``, ``completion:grade`` (the course total).
* ``users`` (Users): every user but the guest and deleted ones; ``user:fullnamewithlink``, ``user:username``,
  ``user:idnumber``, ``user:email``, ``user:lastaccess``.

Values are display strings: dates ``userdate()`` to the minute in the token user's time zone (its ``timezone``, "99"
meaning the site's, ``report_state(site).timezone``), completion "Yes"/"No"/"" ("" without a course_completions row;
"No" for an enrolment marked with :func:`start_completion`), grade with two decimals, text ``s()``-escaped, the full
name unescaped inside a profile link. Conditions (the administrator's) and filters (each user's, set with
``core_reportbuilder_set_filters`` and only for the filters the report has) are ANDed; both use Moodle's form values
(``completion:timecompleted_operator`` 3 = range with ``_from``/``_to``, 4 = last ``_value`` ``_unit``s, ...).

Set-up (test controls, called with the site's lock held or before it serves; each saves the state file)::

    add_report(site, name, source, columns, *, sorting=(), conditions=None, filters=(), audience="all",
               id=None, created=None) -> dict
        # columns: column keys, or {"column": key, "heading": text} for a renamed one; sorting: column keys,
        # ascending, in priority order (none: no ORDER BY, rows in the tables' order); conditions: conditiondata
        # (None: the datasource's default: enrolment status Active / user not suspended); audience: "all" or the
        # usernames of manually added users
    add_recipe_reports(site) -> {"enrolment_results": id, "user_access": id}   # the README's two, token user in UTC
    start_completion(site, courseid, userid)   # a course_completions row without a completion time ("No")
    report_state(site).timezone = "Europe/London"   # the site's default time zone (default UTC)
    report_state(site).clock = 1796583126      # "now" for relative conditions (default: the real time)
    report_state(site).can_view = False         # moodle/reportbuilder:view taken from the token user's roles
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from .courses import SITE_ID, fullname, is_active, userdate
from .grades import course_total, missing_record
from .server import ADMIN_ID, DEFAULT, GUEST_ID, MoodleError, MoodleStandIn, Value, ws_function

SOURCES = {"participants": ("core_course\\reportbuilder\\datasource\\participants", "Course participants"),
           "users": ("core_user\\reportbuilder\\datasource\\users", "Users")}
HEADINGS = {"course:idnumber": "Course ID number", "course:shortname": "Course short name",
            "course:fullname": "Course full name", "user:fullnamewithlink": "Full name with link",
            "user:username": "Username", "user:idnumber": "ID number", "user:email": "Email address",
            "enrolment:timestarted": "Time started", "completion:completed": "Completed",
            "completion:timecompleted": "Time completed", "completion:grade": "Grade", "user:lastaccess": "Last access"}
COLUMNS = {"participants": set(HEADINGS) - {"user:lastaccess"},
           "users": {"user:fullnamewithlink", "user:username", "user:idnumber", "user:email", "user:lastaccess"}}
# "Include default setup": the participants' active enrolments, the users who are not suspended (boolean_select 2 = No)
DEFAULT_CONDITIONS = {"participants": {"enrolment:status_operator": 1, "enrolment:status_value": 0},
                      "users": {"user:suspended_operator": 2}}
DATE_FIELDS = {"enrolment:timestarted", "completion:timecompleted", "user:lastaccess"}
TEXT_FIELDS = {"course:idnumber", "course:shortname", "course:fullname", "user:username", "user:idnumber",
               "user:email", "user:fullname"}
BOOLEAN_FIELDS = {"completion:completed", "user:suspended", "user:confirmed"}
# core_reportbuilder\local\filters\date: operators and units (seconds of each unit)
DATE_ANY, DATE_NOT_EMPTY, DATE_EMPTY, DATE_RANGE, DATE_LAST = 0, 1, 2, 3, 4
DATE_UNITS = {0: 3600, 1: 86400, 2: 7 * 86400, 5: 60, 6: 1}
# boolean_select: any, yes, no; select: any, equal to, not equal to; text: any, contains, does not contain, is equal
# to, is not equal to, starts with, ends with, is empty, is not empty
ANY, CHECKED, NOT_CHECKED = 0, 1, 2
SELECT_EQUAL, SELECT_NOT_EQUAL = 1, 2
REPORT_ACCESS = ("core_reportbuilder\\exception\\report_access_exception", "errorreportview",
                 "You cannot view this report")


@dataclass
class ReportState:
    reports: dict[int, dict] = field(default_factory=dict)
    filters: dict[str, dict] = field(default_factory=dict)  # "userid:reportid" -> the user's filter values
    completions_started: set[tuple[int, int]] = field(default_factory=set)  # (courseid, userid)
    timezone: str = "UTC"
    clock: int | None = None
    can_view: bool = True
    next_id: int = 1

    def now(self) -> int:
        return int(time.time()) if self.clock is None else self.clock


def report_state(site: MoodleStandIn) -> ReportState:
    """The site's reports, users' filters and Report Builder settings (made on first use)."""
    if not hasattr(site, "reportbuilder"):
        site.reportbuilder = ReportState()  # type: ignore[attr-defined]
    return site.reportbuilder  # type: ignore[attr-defined]


def dump_report_state(site: MoodleStandIn) -> dict:
    """The Report Builder part of the state file."""
    state = report_state(site)
    return {"reports": {str(k): v for k, v in state.reports.items()}, "filters": state.filters,
            "completions_started": sorted(state.completions_started), "timezone": state.timezone,
            "clock": state.clock, "can_view": state.can_view, "next_id": state.next_id}


def load_report_state(site: MoodleStandIn, saved: dict | None) -> None:
    if saved:
        site.reportbuilder = ReportState(  # type: ignore[attr-defined]
            reports={int(k): v for k, v in saved["reports"].items()}, filters=saved["filters"],
            completions_started={(c, u) for c, u in saved["completions_started"]}, timezone=saved["timezone"],
            clock=saved["clock"], can_view=saved["can_view"], next_id=saved["next_id"])


# --------------------------------------------------------------------------- test controls


def add_report(site: MoodleStandIn, name: str, source: str, columns: list, *, sorting: list | tuple = (),
               conditions: dict | None = None, filters: list | tuple = (), audience: str | list = "all",
               id: int | None = None, created: int | None = None) -> dict:  # noqa: A002 - Moodle's name
    """A custom report as an administrator makes it (Reports > Report builder > Custom reports)."""
    state = report_state(site)
    if source not in SOURCES:
        raise ValueError(f"unknown datasource {source!r}: one of {sorted(SOURCES)}")
    specs = [{"column": c} if isinstance(c, str) else dict(c) for c in columns]
    for spec in specs:
        if spec["column"] not in COLUMNS[source]:
            raise ValueError(f"the {source} datasource has no column {spec['column']!r} in the stand-in")
    for key in sorting:
        if key not in {spec["column"] for spec in specs}:
            raise ValueError(f"sorting on {key!r}, which is not a column of the report")
    when = int(time.time()) if created is None else int(created)
    report = {"id": id or state.next_id, "name": name, "source": source,
              "columns": [{"column": s["column"], "heading": s.get("heading", HEADINGS[s["column"]])} for s in specs],
              "sorting": list(sorting), "filters": list(filters), "audience": audience,
              "conditions": DEFAULT_CONDITIONS[source] if conditions is None else dict(conditions),
              "timecreated": when, "timemodified": when}
    if report["id"] in state.reports:
        raise ValueError(f"report {report['id']} exists")
    state.reports[report["id"]] = report
    state.next_id = max(state.next_id, report["id"] + 1)
    site.save()
    return report


RECIPE_ENROLMENT_COLUMNS = ["course:idnumber", "course:shortname", "user:fullnamewithlink", "user:username",
                            "user:idnumber", "user:email", "enrolment:timestarted", "completion:completed",
                            "completion:timecompleted", "completion:grade"]
RECIPE_ACCESS_COLUMNS = ["user:fullnamewithlink", "user:username", "user:idnumber", "user:lastaccess"]


def add_recipe_reports(site: MoodleStandIn) -> dict[str, int]:
    """The two reports as the README's recipe (Report Builder reports) has an administrator make them, shared with
    every user, and the token user's time zone set to UTC (its step 6); their ids by ``moodle_reports`` setting."""
    enrolments = add_report(site, "HR results (participants)", "participants", RECIPE_ENROLMENT_COLUMNS,
                            sorting=["course:shortname", "user:username"], filters=["completion:timecompleted"])
    access = add_report(site, "HR users last access", "users", RECIPE_ACCESS_COLUMNS, sorting=["user:username"],
                        filters=["user:lastaccess"])
    site.users[site.token_user_id]["timezone"] = "UTC"
    site.save()
    return {"enrolment_results": enrolments["id"], "user_access": access["id"]}


def start_completion(site: MoodleStandIn, courseid: int, userid: int) -> None:
    """A course_completions row without a completion time (the completion task made it): the report says "No"."""
    report_state(site).completions_started.add((courseid, userid))
    site.save()


# --------------------------------------------------------------------------- values


def s(text: str | None) -> str:
    """s(): htmlspecialchars with ENT_QUOTES, the quote as &#039;."""
    return (text or "").replace("&", "&amp;").replace('"', "&quot;").replace("'", "&#039;") \
        .replace("<", "&lt;").replace(">", "&gt;")


def _participant_rows(site: MoodleStandIn) -> list[dict]:
    """Raw field values of every user enrolment, in the tables' order."""
    state = report_state(site)
    rows = []
    for courseid, members in site.enrolments.items():
        course = site.courses.get(courseid)
        if course is None or courseid == SITE_ID:
            continue
        for userid, record in members.items():
            user = site.users.get(userid)
            if user is None or user.get("deleted"):
                continue
            timecompleted = site.completions.get(courseid, {}).get(userid)
            completed = True if timecompleted is not None else (
                False if (courseid, userid) in state.completions_started else None)
            rows.append({**_user_fields(user), "course:idnumber": course["idnumber"] or "",
                         "course:shortname": course["shortname"], "course:fullname": course["fullname"],
                         "enrolment:timestarted": record.get("timestart") or record["timecreated"],
                         "enrolment:status": 0 if is_active(record, state.now()) else 1,
                         "completion:completed": completed, "completion:timecompleted": timecompleted,
                         "completion:grade": course_total(site, courseid, userid)})
    return rows


def _user_fields(user: dict) -> dict:
    return {"user:id": user["id"], "user:fullname": fullname(user), "user:username": user["username"],
            "user:idnumber": user["idnumber"], "user:email": user["email"],
            "user:lastaccess": user.get("lastaccess") or None, "user:suspended": bool(user.get("suspended")),
            "user:confirmed": bool(user.get("confirmed", 1))}


def _user_rows(site: MoodleStandIn) -> list[dict]:
    return [_user_fields(user) for user in site.users.values() if user["id"] != GUEST_ID and not user.get("deleted")]


def _display(site: MoodleStandIn, key: str, row: dict, zone: ZoneInfo) -> str:
    value = row[key] if key != "user:fullnamewithlink" else None
    if key == "user:fullnamewithlink":
        return f'<a href="{site.base_url}/user/profile.php?id={row["user:id"]}">{row["user:fullname"]}</a>'
    if key in DATE_FIELDS:
        return userdate(value, True, zone) if value else ""
    if key == "completion:completed":
        return {True: "Yes", False: "No", None: ""}[value]
    if key == "completion:grade":
        return "" if value is None else f"{value:.2f}"
    return s(value)


# --------------------------------------------------------------------------- conditions and filters


def _names(values: dict) -> set[str]:
    """The fields a set of form values constrains: 'completion:timecompleted' of 'completion:timecompleted_from'."""
    return {key.rsplit("_", 1)[0] for key in values if key.endswith("_operator")}


def _matches(name: str, values: dict, row: dict, now: int) -> bool:
    operator = int(values.get(f"{name}_operator", ANY) or 0)
    if operator == ANY or name not in row:
        return True
    value = row[name]
    if name in DATE_FIELDS:
        return _date_matches(operator, values, name, value, now)
    if name in BOOLEAN_FIELDS:
        return bool(value) == (operator == CHECKED)
    if name == "enrolment:status":
        wanted = int(values.get(f"{name}_value", 0) or 0)
        return (value == wanted) == (operator == SELECT_EQUAL)
    return _text_matches(operator, str(values.get(f"{name}_value", "")).lower(), str(value or "").lower())


def _date_matches(operator: int, values: dict, name: str, value: int | None, now: int) -> bool:
    if operator == DATE_NOT_EMPTY:
        return bool(value)
    if operator == DATE_EMPTY:
        return not value
    if not value:
        return False
    if operator == DATE_RANGE:
        start, end = int(values.get(f"{name}_from") or 0), int(values.get(f"{name}_to") or 0)
        return (not start or value >= start) and (not end or value <= end)
    if operator == DATE_LAST:
        span = int(values.get(f"{name}_value") or 0) * DATE_UNITS[int(values.get(f"{name}_unit", 1))]
        return now - span <= value <= now
    raise NotImplementedError(f"date operator {operator} is not modelled by the stand-in")


def _text_matches(operator: int, wanted: str, value: str) -> bool:
    tests = {1: wanted in value, 2: wanted not in value, 3: value == wanted, 4: value != wanted,
             5: value.startswith(wanted), 6: value.endswith(wanted), 7: value == "", 8: value != ""}
    return tests.get(operator, True)


def _selected(site: MoodleStandIn, report: dict) -> list[dict]:
    state = report_state(site)
    rows = _participant_rows(site) if report["source"] == "participants" else _user_rows(site)
    stored = state.filters.get(f"{site.token_user_id}:{report['id']}", {})
    applied = [(name, report["conditions"]) for name in _names(report["conditions"])]
    applied += [(name, stored) for name in _names(stored) if name in report["filters"]]
    now = state.now()
    rows = [row for row in rows if all(_matches(name, values, row, now) for name, values in applied)]
    for key in reversed(report["sorting"]):  # stable sorts, least significant first
        sort_key = "user:fullname" if key == "user:fullnamewithlink" else key
        rows.sort(key=lambda row, k=sort_key: (row[k] is not None, row[k] if row[k] is not None else 0))
    return rows


# --------------------------------------------------------------------------- access


def _token_user_zone(site: MoodleStandIn) -> ZoneInfo:
    own = site.users[site.token_user_id].get("timezone", "99")
    return ZoneInfo(report_state(site).timezone if own in ("99", "") else own)


def _can_view(site: MoodleStandIn, report: dict) -> bool:
    """permission::can_view_report(): a site admin may view every report; others need moodle/reportbuilder:view and
    to be in an audience."""
    if site.token_user_id == ADMIN_ID:
        return True
    audience = report["audience"]
    return report_state(site).can_view and (
        audience == "all" or site.users[site.token_user_id]["username"] in audience)


def _viewable(site: MoodleStandIn, reportid: int) -> dict:
    report = report_state(site).reports.get(reportid)
    if report is None:
        raise missing_record("reportbuilder_report")
    if not _can_view(site, report):
        raise MoodleError(*REPORT_ACCESS)
    return report


def _details(site: MoodleStandIn, report: dict) -> dict:
    """The report persistent's exporter: the definition, and who last changed it (the administrator)."""
    admin = site.users[ADMIN_ID]
    source, sourcename = SOURCES[report["source"]]
    return {"name": report["name"], "source": source, "type": 0, "uniquerows": False,
            "conditiondata": json.dumps(report["conditions"], separators=(",", ":")), "settingsdata": None,
            "contextid": 1, "component": "", "area": "", "itemid": 0, "usercreated": ADMIN_ID, "id": report["id"],
            "timecreated": report["timecreated"], "timemodified": report["timemodified"], "usermodified": ADMIN_ID,
            "sourcename": sourcename, "tags": [],
            "modifiedby": {"id": ADMIN_ID, "email": admin["email"], "idnumber": admin["idnumber"],
                           "phone1": admin["phone1"], "phone2": admin["phone2"], "department": admin["department"],
                           "institution": admin["institution"], "fullname": fullname(admin),
                           "identity": admin["email"], "profileurl": f"{site.base_url}/user/profile.php?id={ADMIN_ID}",
                           "profileimageurl": site.picture_url("f1"), "profileimageurlsmall": site.picture_url("f2")}}


# --------------------------------------------------------------------------- web-service functions


@ws_function("core_reportbuilder_list_reports",
             {"page": Value("int", DEFAULT, 0), "perpage": Value("int", DEFAULT, 10)})
def list_reports(site: MoodleStandIn, page: int, perpage: int) -> dict:
    """The reports the token user may view, by name; without moodle/reportbuilder:view, errorreportview."""
    if site.token_user_id != ADMIN_ID and not report_state(site).can_view:
        raise MoodleError(*REPORT_ACCESS)
    reports = sorted((r for r in report_state(site).reports.values() if _can_view(site, r)),
                     key=lambda r: (r["name"], r["id"]))
    return {"reports": [_details(site, r) for r in _page(reports, page, perpage)], "warnings": []}


def _page(rows: list, page: int, perpage: int) -> list:
    """LIMIT/OFFSET as Moodle's database layer takes them: a negative offset is 0, a limit of 0 is none."""
    start = max(page, 0) * max(perpage, 0)
    return rows[start:start + perpage] if perpage > 0 else rows[start:]


@ws_function("core_reportbuilder_retrieve_report",
             {"reportid": Value("int"), "page": Value("int", DEFAULT, 0), "perpage": Value("int", DEFAULT, 10)})
def retrieve_report(site: MoodleStandIn, reportid: int, page: int, perpage: int) -> dict:
    report = _viewable(site, reportid)
    rows = _selected(site, report)
    zone = _token_user_zone(site)
    keys = [column["column"] for column in report["columns"]]
    return {"details": _details(site, report),
            "data": {"headers": [column["heading"] for column in report["columns"]],
                     "rows": [{"columns": [_display(site, key, row, zone) for key in keys]}
                              for row in _page(rows, page, perpage)],
                     "totalrowcount": len(rows)},
            "warnings": []}


@ws_function("core_reportbuilder_set_filters",
             {"reportid": Value("int"), "parameters": Value("raw", DEFAULT, ""), "values": Value("raw")})
def set_filters(site: MoodleStandIn, reportid: int, parameters: str, values: str) -> bool:
    """Stores the token user's filter values for the report (a user preference): values that are not a JSON object
    store nothing to filter on; keys of filters the report does not have are kept but never applied."""
    _viewable(site, reportid)
    try:
        decoded = json.loads(values)
    except ValueError:
        decoded = None
    report_state(site).filters[f"{site.token_user_id}:{reportid}"] = decoded if isinstance(decoded, dict) else {}
    site.save()
    return True


@ws_function("core_reportbuilder_filters_reset", {"reportid": Value("int"), "parameters": Value("raw", DEFAULT, "")})
def filters_reset(site: MoodleStandIn, reportid: int, parameters: str) -> bool:
    _viewable(site, reportid)
    report_state(site).filters.pop(f"{site.token_user_id}:{reportid}", None)
    site.save()
    return True


@ws_function("core_reportbuilder_view_report", {"reportid": Value("int")})
def view_report(site: MoodleStandIn, reportid: int) -> dict:
    """Only logs the 'report viewed' event."""
    _viewable(site, reportid)
    return {"status": True, "warnings": []}
