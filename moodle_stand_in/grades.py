"""Grade and completion functions of the Moodle stand-in, written from Moodle 4.5's
grade/report/user/classes/external/user.php, grade/report/user/classes/report/user.php and
completion/classes/external.php (read, not copied: see tests/moodle_stand_in/contract/README.md),
and held to the live 4.5.6 site's answers.

The gradebook has manual grade items (itemtype "manual") and the course total (itemtype "course"),
aggregated the default way: Natural, empty grades excluded, so a user's total is the sum of that
user's item grades out of the sum of those items' maximums. A course without grade items has a
0-0 total, so a teacher's override of the total is stored as 0, unless it was made before the course's
first regrade (the grade API's default range 0-100 then stays with it). Activities are not modelled, so
there are no "mod" items. Course completion has one criterion, "Manual completion by others" for
the Teacher role, met when the course is marked complete with MoodleStandIn.complete().
"""

from __future__ import annotations

import time

from .courses import (
    GRADEBOOK_ROLES,
    SITE_ID,
    completion_enabled,
    format_float,
    format_string,
    fullname,
    get_course,
    is_active,
    is_tracked_user,
)
from .server import DEFAULT, MoodleError, MoodleStandIn, Value, json_number, moodle_exception, ws_function

COMPLETION_CRITERIA_TYPE_ROLE = 7
COMPLETION_AGGREGATION_ALL = 1
CRITERIA_ROLE_TITLE = "Teacher"  # role_get_name() of editingteacher without a course rename
DEFAULT_ITEM_NAME = "Final assessment"  # the manual item set_grade makes when a course has none
FORMAT_MOODLE, FORMAT_PLAIN = 0, 2


def missing_record(table: str) -> MoodleError:
    """MUST_EXIST lookups (get_course, core_user::get_user) that find nothing."""
    return MoodleError("dml_missing_record_exception", "invalidrecord",
                       f"Can't find data record in database table {table}.")


def active_user(site: MoodleStandIn, userid: int) -> dict:
    """core_user::get_user(MUST_EXIST) then core_user::require_active_user(): a deleted account is refused."""
    user = site.users.get(userid)
    if user is None:
        raise missing_record("user")
    if user.get("deleted"):
        raise moodle_exception("userdeleted")
    return user


# --------------------------------------------------------------------------- test controls (called under the lock)


def add_grade_item(site: MoodleStandIn, courseid: int, itemname: str, grademax: float) -> dict:
    """A manual grade item (Gradebook setup > Add grade item), listed after the course's earlier ones."""
    get_course(site, courseid)
    item = {"id": site.next_grade_item_id, "itemname": itemname, "grademax": float(grademax)}
    site.next_grade_item_id += 1
    site.grade_items.setdefault(courseid, []).append(item)
    return item


def _grade_item(site: MoodleStandIn, courseid: int, itemname: str | None, grademax: float) -> dict:
    items = site.grade_items.get(courseid, [])
    found = items[:1] if itemname is None else [item for item in items if item["itemname"] == itemname]
    item = found[0] if found else add_grade_item(site, courseid, itemname or DEFAULT_ITEM_NAME, grademax)
    item["grademax"] = float(grademax)  # the teacher (re)set the item's maximum grade
    return item


def set_grade(site: MoodleStandIn, courseid: int, userid: int, grade: float | None, grademax: float,
              dategraded: int | None, item: str | None, override: bool, before_first_regrade: bool = False) -> dict:
    """The user's grade for a grade item (bounded by its range; None removes it), or with ``override`` a
    teacher's override of the course total, bounded by the total's range (0-0 without grade items); one made
    ``before_first_regrade`` keeps its own range, 0-``grademax``, which later regrades leave alone."""
    get_course(site, courseid)
    if userid not in site.users:
        raise ValueError(f"no user {userid}")
    now = int(time.time())
    record = site.grades.setdefault(courseid, {}).setdefault(userid, {"timecreated": now, "items": {}})
    when = now if dategraded is None else int(dategraded)
    if override:
        items = site.grade_items.get(courseid, [])
        high = float(grademax) if before_first_regrade else sum(i["grademax"] for i in items)
        record["override"] = None if grade is None else {"finalgrade": min(max(float(grade), 0.0), high),
                                                         "dategraded": when,
                                                         **({"grademax": high} if before_first_regrade else {})}
        return record
    target = _grade_item(site, courseid, item, grademax)
    if grade is None:
        record["items"].pop(str(target["id"]), None)
    else:
        record["items"][str(target["id"])] = {"finalgrade": min(max(float(grade), 0.0), target["grademax"]),
                                              "dategraded": when}
    return record


def upgrade_grade_state(site: MoodleStandIn) -> None:
    """A state file from before grade items held each course total directly: make it the grade of the
    course's first manual item, as set_grade does now."""
    for courseid, members in site.grades.items():
        for userid, record in members.items():
            if "items" in record:
                continue
            old = dict(record)
            record.clear()
            record.update(timecreated=old["timecreated"], items={})
            set_grade(site, courseid, userid, old["finalgrade"], old["grademax"], old["dategraded"], None, False)
    for course in site.courses.values():
        course.pop("grademax", None)


def complete(site: MoodleStandIn, courseid: int, userid: int, timecompleted: int | None) -> None:
    """Mark (or with None, unmark) course completion; the single criterion completes with it."""
    get_course(site, courseid)
    if userid not in site.users:
        raise ValueError(f"no user {userid}")
    if timecompleted is None:
        site.completions.get(courseid, {}).pop(userid, None)
    else:
        site.completions.setdefault(courseid, {})[userid] = int(timecompleted)


def course_total(site: MoodleStandIn, courseid: int, userid: int) -> float | None:
    """The user's course total as the gradebook holds it: a teacher's override, else the sum of the user's item
    grades (Natural aggregation, empty grades excluded), None when the user has neither."""
    record = site.grades.get(courseid, {}).get(userid) or {"items": {}}
    if record.get("override"):
        return record["override"]["finalgrade"]
    graded = [grade["finalgrade"] for grade in record["items"].values()]
    return sum(graded) if graded else None


def is_course_complete(site: MoodleStandIn, courseid: int, userid: int) -> bool:
    return site.completions.get(courseid, {}).get(userid) is not None


# --------------------------------------------------------------------------- gradereport_user_get_grade_items


def _report_row(key: dict, final: float | None, grademax: float, dategraded: int | None, *, overridden: bool = False,
                feedbackformat: int = FORMAT_MOODLE, weight: float | None = None) -> dict:
    """One gradeitemsdata row of the user report as a site admin sees it with the report's default
    settings (weight, grade, range, percentage, feedback on; rank, letter, average off). ``key`` holds the
    item's identifying columns; a weight is shown only for an item that counts in the user's total."""
    grademin = 0.0
    if final is None:
        formatted = percentage = "-"
    else:
        formatted = format_float(final, 2)
        percentage = "" if grademax == grademin else format_float((final - grademin) / (grademax - grademin) * 100,
                                                                  2) + " %"
    row = {**key, "outcomeid": None, "scaleid": None, "locked": False}
    if weight is not None:
        row.update(weightraw=json_number(weight), weightformatted=format_float(weight * 100, 2) + " %")
    row.update({"graderaw": json_number(final), "gradedatesubmitted": None,  # set for activities only
                "gradedategraded": None if final is None else dategraded, "gradehiddenbydate": False,
                "gradeneedsupdate": False, "gradeishidden": False, "gradeislocked": False,
                "gradeisoverridden": overridden, "gradeformatted": formatted, "grademin": json_number(grademin),
                "grademax": json_number(grademax),
                "rangeformatted": f"{format_float(grademin, 0)}&ndash;{format_float(grademax, 0)}",
                "percentageformatted": percentage, "feedback": "", "feedbackformat": feedbackformat})
    return row


def user_grade_items(site: MoodleStandIn, course: dict, userid: int) -> list[dict]:
    """The course's grade items in order, then the course total, for one user (Natural aggregation with
    empty grades excluded: the total and its maximum count only the items the user has a grade in)."""
    if course["gradeitemid"] is None:  # the site course gets its gradebook on first use
        course["gradecategoryid"], course["gradeitemid"] = site.next_grade_category_id, site.next_grade_item_id
        site.next_grade_category_id += 1
        site.next_grade_item_id += 1
    items = site.grade_items.get(course["id"], [])
    record = site.grades.get(course["id"], {}).get(userid) or {"items": {}}
    graded = {item["id"]: record["items"][str(item["id"])] for item in items if str(item["id"]) in record["items"]}
    counted_max = sum(item["grademax"] for item in items if item["id"] in graded)
    rows = []
    for item in items:
        grade = graded.get(item["id"])
        rows.append(_report_row(
            {"id": item["id"], "itemname": format_string(item["itemname"]), "itemtype": "manual", "itemmodule": None,
             "iteminstance": None, "itemnumber": 0, "idnumber": None, "categoryid": course["gradecategoryid"]},
            None if grade is None else grade["finalgrade"], item["grademax"], None if grade is None else
            grade["dategraded"], weight=None if grade is None or not counted_max else item["grademax"] / counted_max))
    total_key = {"id": course["gradeitemid"], "itemname": None, "itemtype": "course", "itemmodule": None,
                 "iteminstance": course["gradecategoryid"], "itemnumber": None, "idnumber": None, "categoryid": None}
    override = record.get("override")
    if override:
        rows.append(_report_row(total_key, override["finalgrade"],
                                override.get("grademax", sum(i["grademax"] for i in items)), override["dategraded"],
                                overridden=True))
    elif graded:
        rows.append(_report_row(total_key, sum(g["finalgrade"] for g in graded.values()), counted_max,
                                max(g["dategraded"] for g in graded.values()), feedbackformat=FORMAT_PLAIN))
    else:
        rows.append(_report_row(total_key, None, sum(i["grademax"] for i in items), None))
    return rows


@ws_function("gradereport_user_get_grade_items",
             {"courseid": Value("int"), "userid": Value("int", DEFAULT, 0), "groupid": Value("int", DEFAULT, 0)})
def get_grade_items(site: MoodleStandIn, courseid: int, userid: int, groupid: int) -> dict:
    """userid 0: every graded user (student role, active enrolment: grade_report_showonlyactiveenrol is on
    by default) ordered by lastname, firstname. A given userid is reported even when not enrolled."""
    course = site.courses.get(courseid)
    if course is None:
        raise missing_record("course")
    if userid:
        users = [active_user(site, userid)]
    elif groupid:
        users = []  # no groups are modelled: a group has no members
    else:
        members = site.enrolments.get(courseid, {})
        users = sorted((site.users[uid] for uid, record in members.items()
                        if is_active(record) and record["role"] in GRADEBOOK_ROLES),
                       key=lambda u: (u["lastname"], u["firstname"], u["id"]))
    usergrades = [{"courseid": course["id"], "courseidnumber": format_string(course["idnumber"]),
                   "userid": user["id"], "userfullname": fullname(user), "useridnumber": user["idnumber"],
                   "maxdepth": 2, "gradeitems": user_grade_items(site, course, user["id"])} for user in users]
    return {"usergrades": usergrades, "warnings": []}


# --------------------------------------------------------------------------- core_completion_*


@ws_function("core_completion_get_course_completion_status", {"courseid": Value("int"), "userid": Value("int")})
def get_course_completion_status(site: MoodleStandIn, courseid: int, userid: int) -> dict:
    course = site.courses.get(courseid)
    if course is None:
        raise missing_record("course")
    active_user(site, userid)
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
