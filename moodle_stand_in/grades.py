"""Grade and completion functions of the Moodle stand-in, written from Moodle 4.5's
grade/report/user/classes/external/user.php, grade/report/user/classes/report/user.php and
completion/classes/external.php (read, not copied: see tests/moodle_stand_in/contract/README.md).

The gradebook is reduced to the course total item (itemtype "course"): the test controls set a
user's course total directly, as an aggregated grade (not an override). Activities are not
modelled, so there are no "mod" items and course progress is always null. Course completion has
one criterion, "Manual completion by others" for the Teacher role, met when the course is marked
complete with MoodleStandIn.complete().
"""

from __future__ import annotations

import time
from decimal import ROUND_HALF_UP, Decimal

from .courses import (
    GRADEBOOK_ROLES,
    SITE_ID,
    completion_enabled,
    format_string,
    fullname,
    get_course,
    is_active,
    is_tracked_user,
)
from .server import DEFAULT, MoodleError, MoodleStandIn, Value, moodle_exception, ws_function

COMPLETION_CRITERIA_TYPE_ROLE = 7
COMPLETION_AGGREGATION_ALL = 1
CRITERIA_ROLE_TITLE = "Teacher"  # role_get_name() of editingteacher without a course rename


def missing_record(table: str) -> MoodleError:
    """MUST_EXIST lookups (get_course, core_user::get_user) that find nothing."""
    return MoodleError("dml_missing_record_exception", "invalidrecord",
                       f"Can't find data record in database table {table}.")


# --------------------------------------------------------------------------- test controls (called under the lock)


def set_grade(site: MoodleStandIn, courseid: int, userid: int, grade: float | None, grademax: float,
              dategraded: int | None) -> dict:
    """The user's course total: finalgrade (None = no grade), rawgrademax, and the time it was graded."""
    course = get_course(site, courseid)
    if userid not in site.users:
        raise ValueError(f"no user {userid}")
    now = int(time.time())
    grades = site.grades.setdefault(courseid, {})
    record = grades.get(userid) or {"timecreated": now}
    record.update(finalgrade=None if grade is None else float(grade), grademax=float(grademax),
                  dategraded=now if dategraded is None else int(dategraded))
    grades[userid] = record
    course["grademax"] = float(grademax)
    return record


def complete(site: MoodleStandIn, courseid: int, userid: int, timecompleted: int | None) -> None:
    """Mark (or with None, unmark) course completion; the single criterion completes with it."""
    get_course(site, courseid)
    if userid not in site.users:
        raise ValueError(f"no user {userid}")
    if timecompleted is None:
        site.completions.get(courseid, {}).pop(userid, None)
    else:
        site.completions.setdefault(courseid, {})[userid] = int(timecompleted)


def is_course_complete(site: MoodleStandIn, courseid: int, userid: int) -> bool:
    return site.completions.get(courseid, {}).get(userid) is not None


# --------------------------------------------------------------------------- gradereport_user_get_grade_items


def format_float(value: float, decimals: int) -> str:
    """format_float(): number_format() rounds half away from zero."""
    return str(Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))


def course_total_item(site: MoodleStandIn, course: dict, userid: int) -> dict:
    """One gradeitemsdata row of the user report for the course total, as seen by a site admin with the
    report's default settings (weight, grade, range, percentage, feedback on; rank, letter, average off).
    The course item has no parent, so its aggregation hint has no weight and status 'unknown': no
    weightraw, weightformatted or status keys."""
    if course["gradeitemid"] is None:  # the site course gets its gradebook on first use
        course["gradecategoryid"], course["gradeitemid"] = site.next_grade_category_id, site.next_grade_item_id
        site.next_grade_category_id += 1
        site.next_grade_item_id += 1
    grade = site.grades.get(course["id"], {}).get(userid)
    final = None if grade is None else grade["finalgrade"]
    grademin, grademax = 0.0, float(grade["grademax"] if grade and final is not None else course["grademax"])
    if final is None:
        formatted = percentage = "-"
    else:
        formatted = format_float(final, 2)
        bounded = min(max(final, grademin), grademax)
        percentage = "" if grademax == grademin else \
            format_float((bounded - grademin) / (grademax - grademin) * 100, 2) + " %"
    return {"id": course["gradeitemid"], "itemname": None, "itemtype": "course", "itemmodule": None,
            "iteminstance": course["gradecategoryid"], "itemnumber": None, "idnumber": None, "categoryid": None,
            "outcomeid": None, "scaleid": None, "locked": False,
            "graderaw": final,
            "gradedatesubmitted": None if grade is None else grade["timecreated"],
            "gradedategraded": None if final is None else grade["dategraded"],
            "gradehiddenbydate": False, "gradeneedsupdate": False, "gradeishidden": False, "gradeislocked": False,
            "gradeisoverridden": False, "gradeformatted": formatted, "grademin": grademin, "grademax": grademax,
            "rangeformatted": f"{format_float(grademin, 0)}&ndash;{format_float(grademax, 0)}",
            "percentageformatted": percentage, "feedback": "", "feedbackformat": 0}


@ws_function("gradereport_user_get_grade_items",
             {"courseid": Value("int"), "userid": Value("int", DEFAULT, 0), "groupid": Value("int", DEFAULT, 0)})
def get_grade_items(site: MoodleStandIn, courseid: int, userid: int, groupid: int) -> dict:
    """userid 0: every graded user (student role, active enrolment: grade_report_showonlyactiveenrol is on
    by default) ordered by lastname, firstname. A given userid is reported even when not enrolled."""
    course = site.courses.get(courseid)
    if course is None:
        raise missing_record("course")
    if userid:
        user = site.users.get(userid)
        if user is None:
            raise missing_record("user")
        users = [user]
    elif groupid:
        users = []  # no groups are modelled: a group has no members
    else:
        members = site.enrolments.get(courseid, {})
        users = sorted((site.users[uid] for uid, record in members.items()
                        if is_active(record) and record["role"] in GRADEBOOK_ROLES),
                       key=lambda u: (u["lastname"], u["firstname"], u["id"]))
    usergrades = [{"courseid": course["id"], "courseidnumber": format_string(course["idnumber"]),
                   "userid": user["id"], "userfullname": fullname(user), "useridnumber": user["idnumber"],
                   "maxdepth": 2, "gradeitems": [course_total_item(site, course, user["id"])]} for user in users]
    return {"usergrades": usergrades, "warnings": []}


# --------------------------------------------------------------------------- core_completion_*


@ws_function("core_completion_get_course_completion_status", {"courseid": Value("int"), "userid": Value("int")})
def get_course_completion_status(site: MoodleStandIn, courseid: int, userid: int) -> dict:
    course = site.courses.get(courseid)
    if course is None:
        raise missing_record("course")
    if userid not in site.users:
        raise missing_record("user")
    # completion_can_view_data(): completion off for the course -> cannotviewreport (checked first).
    if courseid != SITE_ID and not completion_enabled(course):
        raise moodle_exception("cannotviewreport", "You cannot view this report")
    if not is_tracked_user(site, course, userid):
        if userid == site.token_user_id:
            raise moodle_exception("notenroled", "You are not enrolled in this course")
        raise moodle_exception("usernotenroled", "User is not enrolled in this course")
    if not course["has_completion_criteria"]:
        raise moodle_exception("nocriteriaset", "No completion criteria set for this course")
    timecompleted = site.completions.get(courseid, {}).get(userid)
    done = timecompleted is not None
    row = {"type": COMPLETION_CRITERIA_TYPE_ROLE, "title": CRITERIA_ROLE_TITLE, "status": "Yes" if done else "No",
           "complete": done, "timecompleted": timecompleted,
           "details": {"type": "Manual completion by others", "criteria": CRITERIA_ROLE_TITLE,
                       "requirement": f"Marked complete by {CRITERIA_ROLE_TITLE}", "status": ""}}
    return {"completionstatus": {"completed": done, "aggregation": COMPLETION_AGGREGATION_ALL, "completions": [row]},
            "warnings": []}
