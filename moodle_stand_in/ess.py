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
import json
import time
from functools import partial

from .courses import ROLES, SITE_ID, category_sortorders, course_sortorder, enrol, users_courses
from .provisioning import MANUAL_ABSENT, MANUAL_ENABLED, course_by_field_info, manual_enrolment
from .server import (
    ADMIN_ID,
    DEFAULT,
    MoodleError,
    MoodleStandIn,
    Multiple,
    NotImplementedByStandIn,
    Single,
    Value,
    invalid_parameter,
    moodle_exception,
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


# --------------------------------------------------------------------------- core_course_search_courses


SEARCH_CRITERIA = ("search", "modulelist", "blocklist", "tagid")
# core_course_external::get_course_public_information(): the course summary keys search_courses answers.
SUMMARY_KEYS = 17


@ws_function("core_course_search_courses",
             {"criterianame": Value("alpha"), "criteriavalue": Value("raw"), "page": Value("int", DEFAULT, 0),
              "perpage": Value("int", DEFAULT, 0), "requiredcapabilities": Multiple(Value("text"), DEFAULT, []),
              "limittoenrolled": Value("bool", DEFAULT, False), "onlywithcompletion": Value("bool", DEFAULT, False)})
def search_courses(site: MoodleStandIn, criterianame: str, criteriavalue: str, page: int, perpage: int,
                   requiredcapabilities: list[str], limittoenrolled: bool, onlywithcompletion: bool) -> dict:
    """Text in full name, short name, ID number or summary (not in custom fields), or courses holding a module
    type; no category or custom field criterion (quirk 3). Hidden courses too, for this token user (quirk 4),
    in course sort order, each with the course summary part of get_courses_by_field's answer."""
    if criterianame not in SEARCH_CRITERIA:
        raise invalid_parameter(f"Invalid value for criterianame parameter (value: {criterianame})")
    if criterianame in ("blocklist", "tagid") or requiredcapabilities or limittoenrolled or onlywithcompletion:
        raise NotImplementedByStandIn(f"moodle_stand_in searches courses by text or module only ({criterianame})")
    wanted = criteriavalue.casefold()
    modules = {name.strip() for name in criteriavalue.split(",")}
    found = [c for c in site.courses.values() if c["id"] != SITE_ID and (
        any(wanted in str(c.get(key) or "").casefold() for key in ("fullname", "shortname", "idnumber", "summary"))
        if criterianame == "search" else any(a["modname"] in modules for a in _activities(site, c)))]
    orders = category_sortorders(site)
    found.sort(key=lambda c: course_sortorder(site, c, orders))
    shown = found[page * perpage:(page + 1) * perpage] if perpage else found
    return {"total": len(found), "warnings": [],
            "courses": [dict(list(course_by_field_info(site, c, orders).items())[:SUMMARY_KEYS]) for c in shown]}


# --------------------------------------------------------------------------- core_course_get_contents

NEWS_FORUM_OFFSET = 1_000_000  # the news forum's course module id, outside the activities' sequence
MODULE_PLURALS = {"assign": "Assignments", "quiz": "Quizzes", "forum": "Forums"}
MODULE_PURPOSES = {"assign": "assessment", "quiz": "assessment", "forum": "collaboration"}


def _dates(activity: dict) -> list[dict]:
    """The activity dates a course page shows: assignment opens and due, quiz opens and closes (quirk 11)."""
    labels = ((("allowsubmissionsfromdate", "Opens:"), ("duedate", "Due:")) if activity["modname"] == "assign"
              else (("timeopen", "Opens:"), ("timeclose", "Closes:")))
    return [{"label": label, "timestamp": activity[key], "dataid": key} for key, label in labels if activity[key]]


def _customdata(activity: dict) -> str:
    """cm_info customdata as the course page gets it, a JSON string: an assignment's due date as a number and
    its other dates as strings, a quiz's dates as strings."""
    if activity["modname"] == "assign":
        data = {"duedate": activity["duedate"], "cutoffdate": str(activity["cutoffdate"]),
                "allowsubmissionsfromdate": str(activity["allowsubmissionsfromdate"])}
    else:
        data = {key: str(activity[key]) for key in QUIZ_DATES}
    return json.dumps(data, separators=(",", ":"))


def _module(site: MoodleStandIn, modname: str, cmid: int, instance: int, name: str, visible: int, customdata: str,
            dates: list[dict]) -> dict:
    module = {"id": cmid, "url": f"{site.base_url}/mod/{modname}/view.php?id={cmid}", "name": name,
              "instance": instance, "contextid": cmid + 20, "visible": visible, "uservisible": True,
              "visibleoncoursepage": 1, "modicon": f"{site.base_url}/theme/image.php/boost/{modname}/1/monologo"
              "?filtericon=1", "modname": modname, "purpose": MODULE_PURPOSES[modname], "branded": False,
              "modplural": MODULE_PLURALS[modname], "availability": None, "indent": 0, "onclick": "",
              "afterlink": None}
    if modname == "forum":
        module["activitybadge"] = []
    module.update({"customdata": customdata, "noviewlink": False, "completion": 0, "downloadcontent": 1,
                   "dates": dates, "groupmode": 0})
    return module


def _course_modules(site: MoodleStandIn, course: dict) -> list[tuple[int, int, dict]]:
    """(section, time modified, module) of every module this token user sees: the news forum every course has
    in section 0 ("Announcements"), then the activities."""
    news = _module(site, "forum", NEWS_FORUM_OFFSET + course["id"], course["id"], "Announcements", 1,
                   json.dumps({"trackingtype": "1"}, separators=(",", ":")), [])
    found = [(0, course["timecreated"], news)]
    found += [(a["section"], a["timemodified"], _module(site, a["modname"], a["cmid"], a["instance"], a["name"],
                                                       a["visible"], _customdata(a), _dates(a)))
              for a in _activities(site, course) if _sees(site, a)]
    return found


def _course_or_missing(site: MoodleStandIn, courseid: int) -> dict:
    course = site.courses.get(courseid)
    if course is None:
        raise MoodleError("dml_missing_record_exception", "invalidrecord",
                          "Can't find data record in database table course.")
    return course


@ws_function("core_course_get_contents",
             {"courseid": Value("int"),
              "options": Multiple(Single({"name": Value("alpha"), "value": Value("raw")}), DEFAULT, [])})
def get_contents(site: MoodleStandIn, courseid: int, options: list[dict]) -> list[dict]:
    """Every section 0..numsections, named 'General' and 'New section', with the modules this token user sees;
    option modname keeps that module type, and still every section (quirk 11); one course per call."""
    course = _course_or_missing(site, courseid)
    chosen = {option["name"]: option["value"] for option in options}
    unknown = set(chosen) - {"modname", "excludecontents", "excludemodules", "sectionnumber", "cmid"}
    if unknown:
        raise NotImplementedByStandIn(f"moodle_stand_in does not model get_contents options {sorted(unknown)}")
    modules = [(section, module) for section, _, module in _course_modules(site, course)
               if ("modname" not in chosen or module["modname"] == chosen["modname"])
               and ("cmid" not in chosen or module["id"] == int(chosen["cmid"]))]
    sections = range(int(course.get("numsections") or 0) + 1)
    if "sectionnumber" in chosen:
        sections = [int(chosen["sectionnumber"])]
    exclude = chosen.get("excludemodules") not in (None, "", "0")
    return [{"id": course["id"] * 100 + number, "name": "General" if number == 0 else "New section", "visible": 1,
             "summary": "", "summaryformat": 1, "section": number, "hiddenbynumsections": 0, "uservisible": True,
             "component": None, "itemid": None,
             "modules": [] if exclude else [module for section, module in modules if section == number]}
            for number in sections]


# --------------------------------------------------------------------------- updates since, check updates


def _updated(cmid: int, when: int) -> dict:
    return {"contextlevel": "module", "id": cmid, "updates": [{"name": "configuration", "timeupdated": when}]}


@ws_function("core_course_get_updates_since",
             {"courseid": Value("int"), "since": Value("int"), "filter": Multiple(Value("alpha"), DEFAULT, [])})
def get_updates_since(site: MoodleStandIn, courseid: int, since: int, filter: list[str]) -> dict:  # noqa: A002
    """Modules this token user sees whose settings changed after ``since``; a new module and an edited one
    look the same ('configuration', quirk 12)."""
    course = _course_or_missing(site, courseid)
    return {"instances": [_updated(module["id"], when) for _, when, module in _course_modules(site, course)
                          if when > since], "warnings": []}


@ws_function("core_course_check_updates",
             {"courseid": Value("int"),
              "tocheck": Multiple(Single({"contextlevel": Value("alpha"), "id": Value("int"), "since": Value("int")})),
              "filter": Multiple(Value("alpha"), DEFAULT, [])})
def check_updates(site: MoodleStandIn, courseid: int, tocheck: list[dict], filter: list[str]) -> dict:  # noqa: A002
    """Only the modules asked about, and only those changed after their ``since`` (quirk 12)."""
    course = _course_or_missing(site, courseid)
    modules = {module["id"]: when for _, when, module in _course_modules(site, course)}
    if any(item["contextlevel"] != "module" or item["id"] not in modules for item in tocheck):
        raise NotImplementedByStandIn("moodle_stand_in checks updates of the course's visible modules only")
    return {"instances": [_updated(item["id"], modules[item["id"]]) for item in tocheck
                          if modules[item["id"]] > item["since"]], "warnings": []}


# --------------------------------------------------------------------------- calendar


def _events(course: dict, activity: dict) -> list[dict]:
    """The course events create_module() writes: an assignment's due date, a quiz's open and close (quirk 13)."""
    if activity["modname"] == "assign":
        kinds = [("due", activity["duedate"], f"{activity['name']} is due", activity["intro"])]
    else:
        intro = f'<div class="no-overflow">{activity["intro"]}</div>'
        kinds = [("open", activity["timeopen"], f"{activity['name']} opens", intro),
                 ("close", activity["timeclose"], f"{activity['name']} closes", intro)]
    return [{"id": activity["cmid"] * 10 + number, "name": name, "description": description, "format": 1,
             "courseid": course["id"], "categoryid": None, "groupid": None, "userid": ADMIN_ID, "repeatid": None,
             "modulename": activity["modname"], "instance": activity["instance"], "eventtype": kind,
             "timestart": when, "timeduration": 0, "visible": 1, "sequence": 1,
             "timemodified": activity["timemodified"], "subscriptionid": None}
            for number, (kind, when, name, description) in enumerate(kinds) if when]


@ws_function("core_calendar_get_calendar_events",
             {"events": Single({"eventids": Multiple(Value("int"), DEFAULT, []),
                                "courseids": Multiple(Value("int"), DEFAULT, []),
                                "groupids": Multiple(Value("int"), DEFAULT, []),
                                "categoryids": Multiple(Value("int"), DEFAULT, [])}, DEFAULT, {}),
              "options": Single({"userevents": Value("bool", DEFAULT, True), "siteevents": Value("bool", DEFAULT, True),
                                 "timestart": Value("int", DEFAULT, 0), "timeend": Value("int", DEFAULT, 0),
                                 "ignorehidden": Value("bool", DEFAULT, True)}, DEFAULT, {})})
def get_calendar_events(site: MoodleStandIn, events: dict, options: dict) -> dict:
    """Course events of the courses asked for, of visible activities only, ordered by start (quirk 13). The
    stand-in keeps no user, site, group or category events."""
    if events["eventids"] or events["groupids"] or events["categoryids"]:
        raise NotImplementedByStandIn("moodle_stand_in lists course events by course only")
    start, end = options["timestart"], options["timeend"]
    found = [event for courseid in events["courseids"] if courseid in site.courses
             for activity in _activities(site, site.courses[courseid]) if activity["visible"]
             for event in _events(site.courses[courseid], activity)
             if event["timestart"] >= start and (not end or event["timestart"] <= end)]
    return {"events": sorted(found, key=lambda event: (event["timestart"], event["id"])), "warnings": []}


@ws_function("core_calendar_get_action_events_by_courses",
             {"courseids": Multiple(Value("int")), "timesortfrom": Value("int", DEFAULT, None),
              "timesortto": Value("int", DEFAULT, None), "limittonum": Value("int", DEFAULT, 10),
              "searchvalue": Value("raw", DEFAULT, "")})
def get_action_events_by_courses(site: MoodleStandIn, courseids: list[int], timesortfrom: int | None,
                                 timesortto: int | None, limittonum: int, searchvalue: str) -> dict:
    """Action events are the token user's own: none in courses it is not enrolled in (quirk 14)."""
    if set(courseids) & set(_token_user_courses(site)):
        raise NotImplementedByStandIn("moodle_stand_in has no action events for the token user's own courses")
    return {"groupedbycourse": []}


# --------------------------------------------------------------------------- enrolment methods, self enrolment


DISABLED = "Enrolment is disabled or inactive"


def _instance_name(instance: dict) -> str:
    return "Guest access" if instance["enrol"] == "guest" else "Self enrolment (Student)"


def _method_info(course: dict, instance: dict, status) -> dict:
    info = {"id": instance["id"], "courseid": course["id"], "type": instance["enrol"], "name": _instance_name(instance),
            "status": status}
    if instance["password"]:
        info["enrolpassword"] = instance["password"]
    return info


@ws_function("core_enrol_get_course_enrolment_methods", {"courseid": Value("int")})
def get_course_enrolment_methods(site: MoodleStandIn, courseid: int) -> list[dict]:
    """Only enabled self and guest methods, never manual (quirk 17)."""
    course = _course_or_missing(site, courseid)
    return [_method_info(course, i, True) for i in enrol_instances(site, course)
            if i["enrol"] in ("self", "guest") and i["status"] == 0]


@ws_function("enrol_self_get_instance_info", {"instanceid": Value("int")})
def self_instance_info(site: MoodleStandIn, instanceid: int) -> dict:
    """The self enrolment method's details; ``status`` true while it is enabled (quirk 17)."""
    for course in site.courses.values():
        for instance in enrol_instances(site, course):
            if instance["id"] == instanceid and instance["enrol"] == "self":
                return _method_info(course, instance, True if instance["status"] == 0 else DISABLED)
    raise MoodleError("dml_missing_record_exception", "invalidrecord",
                      "Can't find data record in database table enrol.")


@ws_function("enrol_self_enrol_user",
             {"courseid": Value("int"), "password": Value("raw", DEFAULT, ""), "instanceid": Value("int", DEFAULT, 0)},
             writes=True)
def self_enrol_user(site: MoodleStandIn, courseid: int, password: str, instanceid: int) -> dict:
    """Enrols the token user itself: there is no userid parameter (quirk 18)."""
    course = _course_or_missing(site, courseid)
    instance = enabled_instance(site, course, "self")
    if instance is None or (instanceid and instance["id"] != instanceid):
        raise moodle_exception("canntenrol", DISABLED)
    if instance["password"]:
        raise NotImplementedByStandIn("moodle_stand_in does not model enrolment keys")
    enrol(site, site.token_user_id, courseid, "student", False)
    return {"status": True, "warnings": []}
