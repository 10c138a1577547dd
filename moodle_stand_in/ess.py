"""What an Employee Self Service integration asks of Moodle: assignments and quizzes across courses,
enrolment methods, course contents and calendar events (manual enrolment is provisioning.py's).
Written from Moodle 4.5's mod/assign and mod/quiz external functions, enrol/self,
course/externallib.php and calendar/externallib.php (read, not copied), and held to the live recordings in
``../shared/moodle-contract-ess`` (its README's quirks are named below by number).

Activities (assignments and quizzes, as an administrator adds them) and each course's enrolment
methods are kept in the course's own record (``activities``, ``enrol_instances``), so the state
file carries them and a deleted course takes them along. Set them up with :func:`add_activity`,
:func:`update_activity` and :func:`set_enrol_method`.

The token user: the admin (the stand-in's default) sees hidden activities and may assign any role;
any other token user is the integration's web-service user of the recordings, whose role has
``mod/assign:view`` and ``mod/quiz:view`` but not ``moodle/course:viewhiddenactivities``.
"""

from __future__ import annotations

import copy
import time
from functools import partial

from .courses import ROLES, SITE_ID, users_courses
from .provisioning import MANUAL_ABSENT, MANUAL_ENABLED, manual_enrolment
from .server import (
    ADMIN_ID,
    DEFAULT,
    MoodleStandIn,
    Multiple,
    Value,
    ws_function,
)

MODULES = ("assign", "quiz")
# Capabilities the recordings' web-service user holds in a course it is not enrolled in.
TOKEN_ROLE_CAPABILITIES = {"mod/assign:view", "mod/quiz:view"}
ENROL_METHODS = ("manual", "guest", "self")  # what a new course gets, in this order; only manual is enabled
ASSIGN_DATES = ("allowsubmissionsfromdate", "duedate", "cutoffdate", "gradingduedate")
QUIZ_DATES = ("timeopen", "timeclose")
SUBMISSION_SETTINGS = {"assignsubmission_onlinetext_enabled": 1, "assignsubmission_file_enabled": 1,
                       "assignsubmission_file_maxfiles": 1}


# --------------------------------------------------------------------------- state (in the course records)


def _next(site: MoodleStandIn, sequence: str, used) -> int:
    """A site-wide id sequence (course modules, assignments, quizzes, enrolment methods): it starts past
    every id the state holds, so a state file read again never hands out an id twice."""
    name = f"next_{sequence}_id"
    if not hasattr(site, name):
        setattr(site, name, max(used(), default=0) + 1)
    value = getattr(site, name)
    setattr(site, name, value + 1)
    return value


def _all_activities(site: MoodleStandIn) -> list[dict]:
    return [a for course in site.courses.values() for a in course.get("activities", [])]


def start_ids(site: MoodleStandIn, *, user: int | None = None, category: int | None = None,
              course: int | None = None, course_module: int | None = None, enrol_instance: int | None = None) -> None:
    """Ids the next records get, as on a site whose earlier rows used the ones before (the live
    recordings' baseline: users from 5, category 5, courses from 9, course modules from 12)."""
    with site._lock:
        for attribute, value in (("next_id", user), ("next_category_id", category), ("next_course_id", course),
                                 ("next_cm_id", course_module), ("next_enrol_id", enrol_instance)):
            if value is not None:
                setattr(site, attribute, value)


def _enrol_ids(site: MoodleStandIn) -> list[int]:
    return [i["id"] for course in site.courses.values() for i in course.get("enrol_instances", [])]


def enrol_instances(site: MoodleStandIn, course: dict) -> list[dict]:
    """The course's enrolment methods (mdl_enrol) as a new course gets them: manual, guest and self, their
    ids in that order, guest and self disabled (quirk 17). The manual method is provisioning.py's (enabled,
    disabled or absent); the site course has none."""
    if course["id"] == SITE_ID:
        return []
    if "enrol_instances" not in course:
        course["enrol_instances"] = [
            {"id": _next(site, "enrol", partial(_enrol_ids, site)), "enrol": method, "status": 1,
             "roleid": ROLES["student"], "name": None, "password": ""} for method in ENROL_METHODS]
    manual = manual_enrolment(course)
    return [{**i, "status": int(manual != MANUAL_ENABLED)} if i["enrol"] == "manual" else i
            for i in course["enrol_instances"] if i["enrol"] != "manual" or manual != MANUAL_ABSENT]


def enabled_instance(site: MoodleStandIn, course: dict, method: str) -> dict | None:
    return next((i for i in enrol_instances(site, course) if i["enrol"] == method and i["status"] == 0), None)


def set_enrol_method(site: MoodleStandIn, courseid: int, method: str, *, enabled: bool = True,
                     password: str = "") -> dict:
    """An administrator enables (with an enrolment key, or none) or disables a course's self or guest
    enrolment (the manual method: ``MoodleStandIn.set_manual_enrolment``)."""
    if method not in ("self", "guest"):
        raise ValueError(f"set the {method!r} method otherwise: only self and guest enrolment are kept here")
    with site._lock:
        course = site.courses[courseid]
        [found] = [i for i in enrol_instances(site, course) if i["enrol"] == method]
        found.update(status=0 if enabled else 1, password=password)
        site._save()
        return copy.deepcopy(found)


def add_activity(site: MoodleStandIn, courseid: int, modname: str, name: str, *, section: int = 1, visible: int = 1,
                 intro: str = "", timemodified: int | None = None, **settings) -> dict:
    """An assignment or quiz made by an administrator (``create_module()``, as the "Add an activity" form):
    dates as Unix seconds (0 = not set); its calendar events come with it."""
    if modname not in MODULES:
        raise ValueError(f"the stand-in models only {MODULES} activities, not {modname!r}")
    allowed = {*ASSIGN_DATES, *SUBMISSION_SETTINGS} if modname == "assign" else set(QUIZ_DATES)
    unknown = set(settings) - allowed
    if unknown:
        raise ValueError(f"unknown {modname} settings {sorted(unknown)}")
    with site._lock:
        course = site.courses[courseid]
        if course["id"] == SITE_ID:
            raise ValueError("activities go in a course, not on the front page")
        now = int(time.time()) if timemodified is None else int(timemodified)
        defaults = dict.fromkeys(ASSIGN_DATES, 0) | SUBMISSION_SETTINGS if modname == "assign" \
            else dict.fromkeys(QUIZ_DATES, 0)
        record = {"cmid": _next(site, "cm", lambda: [a["cmid"] for a in _all_activities(site)]),
                  "instance": _next(site, modname, lambda: [a["instance"] for a in _all_activities(site)
                                                           if a["modname"] == modname]),
                  "modname": modname, "name": name, "section": int(section), "visible": int(visible),
                  "intro": intro, "timecreated": now, "timemodified": now, **defaults,
                  **{key: int(value) if key in ASSIGN_DATES + QUIZ_DATES else value for key, value in settings.items()}}
        course.setdefault("activities", []).append(record)
        site._save()
        return copy.deepcopy(record)


def update_activity(site: MoodleStandIn, cmid: int, **changes) -> dict:
    """A teacher edits an activity (its dates, name, visibility): timemodified moves, as every edit moves it."""
    with site._lock:
        [record] = [a for a in _all_activities(site) if a["cmid"] == cmid]
        record.update(changes)
        record["timemodified"] = int(changes.get("timemodified", time.time()))
        site._save()
        return copy.deepcopy(record)


def _activities(site: MoodleStandIn, course: dict, modname: str | None = None) -> list[dict]:
    return [a for a in course.get("activities", []) if modname is None or a["modname"] == modname]


def _token_is_admin(site: MoodleStandIn) -> bool:
    return site.token_user_id == ADMIN_ID


def _sees(site: MoodleStandIn, activity: dict) -> bool:
    """moodle/course:viewhiddenactivities: only the admin sees hidden activities (quirks 6, 7, 11, 13)."""
    return bool(activity["visible"]) or _token_is_admin(site)


def _holds(site: MoodleStandIn, capabilities: list[str]) -> bool:
    return _token_is_admin(site) or set(capabilities) <= TOKEN_ROLE_CAPABILITIES


def _token_user_courses(site: MoodleStandIn) -> list[int]:
    return [course["id"] for course in users_courses(site, site.token_user_id)]


def _warning(item: str, itemid: int, code: str, message: str) -> dict:
    return {"item": item, "itemid": itemid, "warningcode": code, "message": message}


# --------------------------------------------------------------------------- mod_assign_get_assignments


def _assign_configs(activity: dict) -> list[dict]:
    """assign_plugin_config rows of an assignment made with the form's defaults (submission plugins)."""
    def config(plugin: str, name: str, value) -> dict:
        return {"plugin": plugin, "subtype": "assignsubmission", "name": name, "value": str(value)}

    return [config("onlinetext", "enabled", activity["assignsubmission_onlinetext_enabled"]),
            config("onlinetext", "wordlimit", 0), config("onlinetext", "wordlimitenabled", 0),
            config("file", "enabled", activity["assignsubmission_file_enabled"]),
            config("file", "maxfilesubmissions", activity["assignsubmission_file_maxfiles"]),
            config("file", "maxsubmissionsizebytes", 2097152), config("file", "filetypeslist", ""),
            config("comments", "enabled", 0)]


def _assignment(course: dict, a: dict) -> dict:
    """get_assignments_assignment_structure() keys, in order, for an assignment made with the form's defaults."""
    return {"id": a["instance"], "cmid": a["cmid"], "course": course["id"], "name": a["name"], "nosubmissions": 0,
            "submissiondrafts": 1, "sendnotifications": 0, "sendlatenotifications": 0, "sendstudentnotifications": 1,
            "duedate": a["duedate"], "allowsubmissionsfromdate": a["allowsubmissionsfromdate"], "grade": 100,
            "timemodified": a["timemodified"], "completionsubmit": 0, "cutoffdate": a["cutoffdate"],
            "gradingduedate": a["gradingduedate"], "teamsubmission": 0, "requireallteammemberssubmit": 0,
            "teamsubmissiongroupingid": 0, "blindmarking": 0, "hidegrader": 0, "revealidentities": 0,
            "attemptreopenmethod": "untilpass", "maxattempts": 1, "markingworkflow": 0, "markingallocation": 0,
            "markinganonymous": 0, "requiresubmissionstatement": 0, "preventsubmissionnotingroup": 0,
            "configs": _assign_configs(a), "intro": a["intro"], "introformat": 1, "introfiles": [],
            "introattachments": [], "timelimit": 0, "submissionattachments": 0}


@ws_function("mod_assign_get_assignments",
             {"courseids": Multiple(Value("int"), DEFAULT, []), "capabilities": Multiple(Value("text"), DEFAULT, []),
              "includenotenrolledcourses": Value("bool", DEFAULT, False)})
def get_assignments(site: MoodleStandIn, courseids: list[int], capabilities: list[str],
                    includenotenrolledcourses: bool) -> dict:
    """Courses in the order asked, minus those refused. Without ``includenotenrolledcourses`` a course the
    token user is not enrolled in is a warning '2' (quirk 5); an unknown id a warning '1' (quirk 6); a
    course where a capability asked for is lacking is dropped silently (quirk 8); without ``courseids``
    only the token user's own courses (quirk 9). A hidden assignment is a module warning (quirk 6)."""
    mine = _token_user_courses(site)
    wanted = courseids or mine
    courses, warnings = [], []
    for courseid in dict.fromkeys(wanted):
        course = site.courses.get(courseid)
        if course is None:
            warnings.append(_warning("course", courseid, "1", "No access rights in course context Can't find data "
                                     "record in database table course."))
            continue
        if not includenotenrolledcourses and courseid not in mine and not _token_is_admin(site):
            warnings.append(_warning("course", courseid, "2",
                                     "User is not enrolled or does not have requested capability"))
            continue
        if capabilities and not _holds(site, capabilities):
            continue
        assignments = []
        for activity in _activities(site, course, "assign"):
            if _sees(site, activity):
                assignments.append(_assignment(course, activity))
            else:
                warnings.append(_warning("module", activity["cmid"], "1", "No access rights in module context"))
        courses.append({"id": course["id"], "fullname": course["fullname"], "shortname": course["shortname"],
                        "timemodified": course["timemodified"], "assignments": assignments})
    return {"courses": courses, "warnings": warnings}


# --------------------------------------------------------------------------- mod_quiz_get_quizzes_by_courses


def _quiz(course: dict, q: dict) -> dict:
    """The quiz keys a user who may view (not attempt) the quiz gets, in order."""
    return {"id": q["instance"], "coursemodule": q["cmid"], "course": course["id"], "name": q["name"],
            "intro": q["intro"], "introformat": 1, "introfiles": [], "section": q["section"],
            "visible": bool(q["visible"]), "groupmode": 0, "groupingid": 0, "lang": "", "timeopen": q["timeopen"],
            "timeclose": q["timeclose"], "timelimit": 0, "preferredbehaviour": "deferredfeedback", "attempts": 0,
            "grademethod": 1, "decimalpoints": 2, "questiondecimalpoints": -1, "sumgrades": 0, "grade": 100,
            "hasfeedback": 0}


@ws_function("mod_quiz_get_quizzes_by_courses", {"courseids": Multiple(Value("int"), DEFAULT, [])})
def get_quizzes_by_courses(site: MoodleStandIn, courseids: list[int]) -> dict:
    """No enrolment needed; a hidden quiz is silently absent, an unknown course a warning '1' without
    detail (quiz quirk 7); without ``courseids`` only the token user's own courses (quirk 9)."""
    quizzes, warnings = [], []
    for courseid in dict.fromkeys(courseids or _token_user_courses(site)):
        course = site.courses.get(courseid)
        if course is None:
            warnings.append(_warning("course", courseid, "1", "No access rights in course context"))
            continue
        quizzes += [_quiz(course, q) for q in _activities(site, course, "quiz") if _sees(site, q)]
    return {"quizzes": quizzes, "warnings": warnings}
