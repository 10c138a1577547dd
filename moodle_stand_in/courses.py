"""Course, category and enrolment functions of the Moodle stand-in, written from Moodle 4.5's
course/externallib.php and enrol/externallib.php (read, not copied: see tests/moodle_stand_in/contract/README.md).

What a sync client must cope with is kept:

* get_courses lists the site course (id 1, format "site") along with the real ones, and lists every
  course custom field the caller may see, empty ones included: ``valueraw`` is what the database
  holds (an int for select, checkbox and date fields, a string for text and textarea) and ``value``
  is the display form (the option text, "Yes"/"No", a formatted date) or null when empty.
* get_users_courses only has a user's *active* enrolments, and leaves out hidden courses unless
  the user's own role may see hidden courses - a student enrolled in a hidden course is not told.
* get_enrolled_users lists every enrolment, suspended ones included, unless asked otherwise.
* Categories are sorted by comparing their sortorder as *strings*, as PHP's strcmp does.

State lives on the MoodleStandIn object (``courses``, ``categories``, ``enrolments``,
``course_access``, ``course_custom_fields``); the grade and completion parts are in grades.py.
"""

from __future__ import annotations

import base64
import copy
import re
import time
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal

from .server import (
    ADMIN_ID,
    DEFAULT,
    GUEST_ID,
    OPTIONAL,
    SITE_NAME,
    MoodleError,
    MoodleStandIn,
    Multiple,
    NotImplementedByStandIn,
    Single,
    Value,
    clean_param,
    coding_exception,
    invalid_parameter,
    json_number,
    moodle_exception,
    ws_function,
)
from .users import own_preferences

SITE_ID = 1
SITE_SHORTNAME = "stand-in"
MAX_COURSES_IN_CATEGORY = 10000
FORMAT_MOODLE, FORMAT_HTML = 0, 1

# Standard roles as lib/db/install.php creates them: mdl_role.name is '' (the UI uses role_get_name()).
ROLES = {"manager": 1, "coursecreator": 2, "editingteacher": 3, "teacher": 4, "student": 5, "guest": 6,
         "user": 7, "frontpage": 8}
VIEW_HIDDEN_COURSES = {"manager", "editingteacher", "teacher"}  # moodle/course:viewhiddencourses
GRADEBOOK_ROLES = {"student"}      # $CFG->gradebookroles default
COMPLETION_ROLES = {"student"}     # moodle/course:isincompletionreports ("student role only")

DEFAULT_COURSE_CUSTOM_FIELDS = [
    {"shortname": "testdates", "name": "Test Dates", "type": "date"},
    {"shortname": "unitstandardid", "name": "Unit Standard ID", "type": "text"},
    {"shortname": "saqaregistered", "name": "SAQA Registered?", "type": "checkbox"},
    {"shortname": "passrate", "name": "Pass Rate", "type": "number"},
    {"shortname": "anothertest", "name": "Another test", "type": "select",
     "options": ["Beginner", "Intermediate", "Advanced"]},
    {"shortname": "nqflevel", "name": "NQF level", "type": "select", "options": [f"NQF {n}" for n in range(1, 11)]},
    {"shortname": "testtextarea", "name": "Test text area", "type": "textarea"},
]
FIELD_TYPES = {"text", "textarea", "select", "checkbox", "date", "number"}
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# Keys of mdl_course a test may set through add_course/update_course.
COURSE_FIELDS = {"fullname", "shortname", "category", "idnumber", "summary", "format", "showgrades", "newsitems",
                 "startdate", "enddate", "marker", "maxbytes", "showreports", "visible", "groupmode",
                 "groupmodeforce", "defaultgroupingid", "lang", "theme", "enablecompletion", "completionnotify",
                 "showactivitydates", "showcompletionconditions", "numsections", "has_completion_criteria",
                 "timecreated", "timemodified"}


# --------------------------------------------------------------------------- state


def seed_course_state(site: MoodleStandIn) -> None:
    """A fresh 4.5 site: the site course (id 1) and the default category "Category 1" (id 1)."""
    now = int(time.time())
    site.categories = {1: {"id": 1, "name": "Category 1", "idnumber": None, "description": None,
                           "descriptionformat": FORMAT_HTML, "parent": 0, "visible": 1, "visibleold": 1,
                           "timemodified": now, "theme": None}}
    site.courses = {SITE_ID: {
        "id": SITE_ID, "category": 0, "fullname": SITE_NAME, "shortname": SITE_SHORTNAME, "idnumber": "",
        "summary": "", "summaryformat": FORMAT_MOODLE, "format": "site", "showgrades": 1, "newsitems": 3,
        "startdate": 0, "enddate": 0, "marker": 0, "maxbytes": 0, "showreports": 0, "visible": 1,
        "groupmode": 0, "groupmodeforce": 0, "defaultgroupingid": 0, "lang": "", "theme": "",
        "timecreated": now, "timemodified": now, "enablecompletion": 0, "completionnotify": 0,
        "showactivitydates": 0, "showcompletionconditions": None, "numsections": 1, "has_completion_criteria": False,
        "customfields": {}, "gradecategoryid": None, "gradeitemid": None}}
    site.course_rows = [SITE_ID]  # mdl_course in the heap's order, which is what a query without ORDER BY gets
    site.enrolments = {}        # courseid -> userid -> {"role", "status" (0 active, 1 suspended), "timecreated"}
    site.course_access = {}     # courseid -> userid -> mdl_user_lastaccess.timeaccess
    site.grades = {}            # courseid -> userid -> course total grade (grades.py)
    site.completions = {}       # courseid -> userid -> timecompleted (grades.py)
    site.grade_items = {}       # courseid -> the course's grade items other than its total (grades.py)
    site.course_custom_fields = copy.deepcopy(DEFAULT_COURSE_CUSTOM_FIELDS)
    site.signup_enabled = True  # $CFG->registerauth == 'email'
    site.next_category_id = 2
    site.next_course_id = 2
    site.next_grade_category_id = 1
    site.next_grade_item_id = 1


def _int_keys(mapping: dict) -> dict:
    return {int(key): value for key, value in mapping.items()}


def _nested_int_keys(mapping: dict) -> dict:
    return {int(key): _int_keys(inner) for key, inner in mapping.items()}


def _str_keys(mapping: dict) -> dict:
    """courseid -> userid -> record, with string keys at both levels."""
    return {str(key): {str(k): v for k, v in inner.items()} for key, inner in mapping.items()}


def dump_course_state(site: MoodleStandIn) -> dict:
    """The course half of the state file (JSON object keys are strings)."""
    return {"categories": {str(k): v for k, v in site.categories.items()},
            "courses": {str(k): v for k, v in site.courses.items()},
            "enrolments": _str_keys(site.enrolments), "course_access": _str_keys(site.course_access),
            "grades": _str_keys(site.grades), "completions": _str_keys(site.completions),
            "grade_items": {str(k): v for k, v in site.grade_items.items()}, "course_rows": site.course_rows,
            "course_custom_fields": site.course_custom_fields, "signup_enabled": site.signup_enabled,
            "next_category_id": site.next_category_id, "next_course_id": site.next_course_id,
            "next_grade_category_id": site.next_grade_category_id, "next_grade_item_id": site.next_grade_item_id}


def load_course_state(site: MoodleStandIn, state: dict) -> None:
    """Read what dump_course_state wrote; a state file from before courses existed keeps the seed, one from
    before grade items and row order gets the course total as one graded item and rows in id order."""
    if "courses" not in state:
        return
    from .grades import upgrade_grade_state
    site.categories = _int_keys(state["categories"])
    site.courses = _int_keys(state["courses"])
    for key in ("enrolments", "course_access", "grades", "completions"):
        setattr(site, key, _nested_int_keys(state.get(key, {})))
    site.course_rows = state.get("course_rows") or sorted(site.courses)
    site.grade_items = _int_keys(state.get("grade_items", {}))
    upgrade_grade_state(site)
    site.course_custom_fields = state.get("course_custom_fields", site.course_custom_fields)
    site.signup_enabled = state.get("signup_enabled", True)
    for key in ("next_category_id", "next_course_id", "next_grade_category_id", "next_grade_item_id"):
        setattr(site, key, state[key])


# --------------------------------------------------------------------------- derived values


def category_path(site: MoodleStandIn, category: dict) -> str:
    path, node = [], category
    while node is not None:
        path.append(node["id"])
        node = site.categories.get(node["parent"])
    return "/" + "/".join(str(i) for i in reversed(path))


def category_depth(site: MoodleStandIn, category: dict) -> int:
    return category_path(site, category).count("/")


def category_sortorders(site: MoodleStandIn) -> dict[int, int]:
    """fix_course_sortorder(): categories numbered depth-first, MAX_COURSES_IN_CATEGORY apart.

    A new category goes after its siblings (assumed; create() was not traced through)."""
    orders, counter = {}, [0]

    def walk(parent: int) -> None:
        for cid in sorted(c for c, cat in site.categories.items() if cat["parent"] == parent):
            counter[0] += 1
            orders[cid] = counter[0] * MAX_COURSES_IN_CATEGORY
            walk(cid)

    walk(0)
    return orders


def course_sortorder(site: MoodleStandIn, course: dict, orders: dict[int, int] | None = None) -> int:
    """Category sortorder + position; create_course() puts a new course first in its category."""
    if course["id"] == SITE_ID:
        return 1
    orders = orders if orders is not None else category_sortorders(site)
    siblings = sorted((c["id"] for c in site.courses.values() if c["category"] == course["category"]
                       and c["id"] != SITE_ID), reverse=True)
    return orders.get(course["category"], 0) + siblings.index(course["id"]) + 1


def format_float(value: float, decimals: int) -> str:
    """format_float(): number_format() rounds half away from zero."""
    return str(Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))


def format_string(text: str | None) -> str:
    """format_string() with the default striptags: tags go, a bare & becomes &amp;."""
    text = re.sub(r"<[^>]*>", "", text or "")
    return re.sub(r"&(?!#?\w+;)", "&amp;", text)


def fullname(user: dict) -> str:
    return f"{user['firstname']} {user['lastname']}"


def enrolment(site: MoodleStandIn, courseid: int, userid: int) -> dict | None:
    return site.enrolments.get(courseid, {}).get(userid)


def is_active(record: dict | None, now: int | None = None) -> bool:
    """An active enrolment: not suspended, and within its dates (an enrolment past its end counts as suspended)."""
    if record is None or record["status"] != 0:
        return False
    now = int(time.time()) if now is None else now
    return record.get("timestart", 0) <= now and not 0 < record.get("timeend", 0) <= now


def completion_enabled(course: dict) -> bool:
    """completion_info::is_enabled(): site completion is on in the stand-in, so the course flag decides."""
    return bool(course["enablecompletion"]) and course["id"] != SITE_ID


def is_tracked_user(site: MoodleStandIn, course: dict, userid: int) -> bool:
    """is_enrolled(..., 'moodle/course:isincompletionreports', onlyactive=true)."""
    record = enrolment(site, course["id"], userid)
    return is_active(record) and record["role"] in COMPLETION_ROLES


def users_courses(site: MoodleStandIn, userid: int) -> list[dict]:
    """enrol_get_users_courses($userid, true): active enrolments, hidden courses only for roles that
    may see them (the *enrolled user's* capability), ordered visible DESC, sortorder ASC."""
    if userid in (0, GUEST_ID):
        return []
    orders = category_sortorders(site)
    found = []
    for courseid, members in site.enrolments.items():
        record = members.get(userid)
        course = site.courses.get(courseid)
        if course is None or courseid == SITE_ID or not is_active(record):
            continue
        if not course["visible"] and record["role"] not in VIEW_HIDDEN_COURSES:
            continue
        found.append(course)
    return sorted(found, key=lambda c: (-int(bool(c["visible"])), course_sortorder(site, c, orders)))


# --------------------------------------------------------------------------- custom fields


def _field(site: MoodleStandIn, shortname: str) -> dict:
    for field in site.course_custom_fields:
        if field["shortname"] == shortname:
            return field
    raise ValueError(f"no course custom field {shortname!r}")


def field_default(field: dict):
    """data_controller::get_default_value() per field type."""
    kind = field["type"]
    if kind == "select":
        default = field.get("defaultvalue", "")
        options = field.get("options", [])
        return options.index(default) + 1 if default in options else 0
    if kind == "checkbox":
        return 1 if field.get("checkbydefault") else 0
    if kind == "date":
        return 0
    if kind == "number":  # customfield_number: decvalue, NULL without a default
        return parse_field_value(field, field.get("defaultvalue"))
    return field.get("defaultvalue", "")


def parse_field_value(field: dict, value) -> object:
    """The stored value for a display value: select option text -> 1-based index (0 if not an
    option, as field_controller::parse_value does), checkbox '1'/'0' -> int, date -> int timestamp,
    number -> its value (None when empty; the course form refuses anything else)."""
    kind = field["type"]
    if kind == "select":
        options = field.get("options", [])
        return options.index(value) + 1 if value in options else 0
    if kind in ("checkbox", "date"):
        return int(value or 0)
    if kind == "number":
        return None if value is None or str(value).strip() == "" else json_number(float(value))
    return "" if value is None else str(value)


def userdate(timestamp: int, with_time: bool, zone: tzinfo = UTC) -> str:
    """userdate() with langconfig strftimedate '%d %B %Y' (or strftimedaydatetime), day and hour without a
    leading zero, in ``zone`` (the reader's time zone; the stand-in's server time zone is UTC)."""
    moment = datetime.fromtimestamp(int(timestamp), zone)
    text = f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}"
    if with_time:
        hour = moment.hour % 12 or 12
        text = f"{_DAYS[moment.weekday()]}, {text}, {hour}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"
    return text


def export_value(field: dict, raw) -> str | None:
    """data_controller::export_value(): the display value, None when empty."""
    kind = field["type"]
    if kind == "checkbox":
        return "Yes" if raw else "No"
    if kind == "select":
        options = field.get("options", [])
        return options[raw - 1] if isinstance(raw, int) and 1 <= raw <= len(options) else None
    if kind == "date":
        return userdate(raw, bool(field.get("includetime"))) if raw else None
    if kind == "number":  # field_controller::prepare_field_for_display()
        if raw is None:
            return None
        decimals = int(field.get("decimalplaces", 0))
        if round(float(raw), decimals) == 0:
            zero = field.get("displaywhenzero", "0")
            return None if zero == "" else format_string(zero)
        return format_string(field.get("display", "{value}").replace("{value}", format_float(raw, decimals)))
    if kind == "textarea":
        return None if re.sub(r"<[^>]*>|&nbsp;|\s", "", raw or "") == "" else raw
    return None if (raw or "") == "" else format_string(raw)


def export_customfields(site: MoodleStandIn, course: dict) -> list[dict]:
    """course_handler::export_instance_data(): every field the caller may see, data or not; a field
    with visibility 0 ("Not visible") is left out even for an admin."""
    result = []
    for field in site.course_custom_fields:
        if field.get("visibility", 2) == 0:
            continue
        raw = course["customfields"].get(field["shortname"], field_default(field))
        result.append({"name": format_string(field["name"]), "shortname": field["shortname"], "type": field["type"],
                       "valueraw": raw, "value": export_value(field, raw)})
    return result


def set_customfields(site: MoodleStandIn, course: dict, values: dict | None) -> None:
    for shortname, value in (values or {}).items():
        course["customfields"][shortname] = parse_field_value(_field(site, shortname), value)


# --------------------------------------------------------------------------- test controls (called under the lock)


def add_category(site: MoodleStandIn, name: str, parent: int = 0, idnumber: str = "") -> dict:
    if parent and parent not in site.categories:
        raise ValueError(f"no category {parent}")
    record = {"id": site.next_category_id, "name": name, "idnumber": idnumber, "description": "",
              "descriptionformat": FORMAT_MOODLE, "parent": parent, "visible": 1, "visibleold": 1,
              "timemodified": int(time.time()), "theme": None}
    site.next_category_id += 1
    site.categories[record["id"]] = record
    return record


def add_course(site: MoodleStandIn, shortname: str, fullname_: str | None, categoryid: int, **fields) -> dict:
    if categoryid not in site.categories:
        raise ValueError(f"no category {categoryid}")
    if any(c["shortname"] == shortname for c in site.courses.values()):
        raise ValueError(f"shortname {shortname!r} is taken")  # create_course(): shortnametaken
    customfields = fields.pop("customfields", None)
    unknown = set(fields) - COURSE_FIELDS
    if unknown:
        raise ValueError(f"unknown course fields {sorted(unknown)}")
    now = int(time.time())
    # moodlecourse defaults of a fresh 4.5 site.
    record = {"id": site.next_course_id, "category": categoryid, "fullname": fullname_ or shortname,
              "shortname": shortname, "idnumber": "", "summary": "", "summaryformat": FORMAT_HTML, "format": "topics",
              "showgrades": 1, "newsitems": 5, "startdate": 0, "enddate": 0, "marker": 0, "maxbytes": 0,
              "showreports": 0, "visible": 1, "groupmode": 0, "groupmodeforce": 0, "defaultgroupingid": 0,
              "lang": "", "theme": "", "timecreated": now, "timemodified": now, "enablecompletion": 1,
              "completionnotify": 0, "showactivitydates": 1, "showcompletionconditions": 1, "numsections": 4,
              "has_completion_criteria": True, "customfields": {},
              "gradecategoryid": site.next_grade_category_id, "gradeitemid": site.next_grade_item_id}
    record.update(fields)
    _completion_conditions(record)
    site.next_course_id += 1
    site.next_grade_category_id += 1
    site.next_grade_item_id += 1
    set_customfields(site, record, customfields)
    site.courses[record["id"]] = record
    site.course_rows.append(record["id"])
    return record


def _completion_conditions(course: dict) -> None:
    """create_course()/update_course() store showcompletionconditions NULL while completion is off; the
    form's default (show) comes back when it is turned on again."""
    if not course["enablecompletion"]:
        course["showcompletionconditions"] = None
    elif course["showcompletionconditions"] is None:
        course["showcompletionconditions"] = 1


def get_course(site: MoodleStandIn, courseid: int) -> dict:
    course = site.courses.get(courseid)
    if course is None:
        raise ValueError(f"no course {courseid}")
    return course


def update_course(site: MoodleStandIn, courseid: int, fields: dict) -> dict:
    course = get_course(site, courseid)
    fields = dict(fields)
    if "categoryid" in fields:
        fields["category"] = fields.pop("categoryid")
    customfields = fields.pop("customfields", None)
    unknown = set(fields) - COURSE_FIELDS
    if unknown:
        raise ValueError(f"unknown course fields {sorted(unknown)}")
    if "category" in fields and fields["category"] not in site.categories:
        raise ValueError(f"no category {fields['category']}")
    course.update(fields)
    _completion_conditions(course)
    set_customfields(site, course, customfields)
    if "timemodified" not in fields:
        course["timemodified"] = int(time.time())
    site.course_rows.remove(courseid)  # PostgreSQL writes the updated row's new version after the others
    site.course_rows.append(courseid)
    return course


def reorder_courses(site: MoodleStandIn, courseids: list[int]) -> None:
    """Put mdl_course's rows in this physical order (courses not named keep theirs, after them)."""
    for courseid in courseids:
        get_course(site, courseid)
    site.course_rows = list(courseids) + [cid for cid in site.course_rows if cid not in courseids]


def delete_course(site: MoodleStandIn, courseid: int) -> None:
    if courseid == SITE_ID:
        raise ValueError("the site course cannot be deleted")
    get_course(site, courseid)
    del site.courses[courseid]
    site.course_rows.remove(courseid)
    for table in (site.enrolments, site.course_access, site.grades, site.completions, site.grade_items):
        table.pop(courseid, None)


def enrol(site: MoodleStandIn, userid: int, courseid: int, role: str, suspended: bool) -> dict:
    course = get_course(site, courseid)
    if course["id"] == SITE_ID:
        raise ValueError("nobody is enrolled in the site course")
    if userid not in site.users or userid == GUEST_ID or site.users[userid].get("deleted"):
        raise ValueError(f"no user {userid} that can be enrolled")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    members = site.enrolments.setdefault(courseid, {})
    record = members.get(userid) or {"timecreated": int(time.time())}
    record.update(role=role, status=1 if suspended else 0)
    members[userid] = record
    return record


def unenrol(site: MoodleStandIn, userid: int, courseid: int) -> None:
    site.enrolments.get(courseid, {}).pop(userid, None)
    site.course_access.get(courseid, {}).pop(userid, None)


def touch(site: MoodleStandIn, userid: int, when: int) -> None:
    """A login + visit: mdl_user.lastaccess (firstaccess the first time) and mdl_user_lastaccess for
    every course the user is enrolled in."""
    user = site.users[userid]
    user["lastaccess"] = int(when)
    if not user.get("firstaccess"):
        user["firstaccess"] = int(when)
    for courseid, members in site.enrolments.items():
        if userid in members:
            site.course_access.setdefault(courseid, {})[userid] = int(when)


# --------------------------------------------------------------------------- core_course_get_courses


def course_info(site: MoodleStandIn, course: dict, orders: dict[int, int]) -> dict:
    """get_courses() for a caller with moodle/course:update, keys in get_courses_returns() order."""
    info = {"id": course["id"], "shortname": format_string(course["shortname"]), "categoryid": course["category"],
            "categorysortorder": course_sortorder(site, course, orders), "fullname": format_string(course["fullname"]),
            "displayname": format_string(course["fullname"]), "idnumber": course["idnumber"],
            "summary": course["summary"] or "", "summaryformat": course["summaryformat"], "format": course["format"],
            "showgrades": course["showgrades"], "newsitems": course["newsitems"], "startdate": course["startdate"],
            "enddate": course["enddate"], "numsections": course["numsections"], "maxbytes": course["maxbytes"],
            "showreports": course["showreports"], "visible": int(course["visible"])}
    options = format_options(course)
    if "hiddensections" in options:  # the deprecated top-level copy, only when the format has the option
        info["hiddensections"] = options["hiddensections"]
    info.update({"groupmode": course["groupmode"], "groupmodeforce": course["groupmodeforce"],
                 "defaultgroupingid": course["defaultgroupingid"], "timecreated": course["timecreated"],
                 "timemodified": course["timemodified"], "enablecompletion": int(course["enablecompletion"]),
                 "completionnotify": course["completionnotify"], "lang": course["lang"] or "",
                 "forcetheme": course["theme"] or "",
                 "courseformatoptions": [{"name": k, "value": v} for k, v in options.items()],
                 "showactivitydates": bool(course["showactivitydates"]),
                 "showcompletionconditions": completion_conditions_shown(course)})
    fields = export_customfields(site, course)
    if fields:
        info["customfields"] = fields
    return info


def completion_conditions_shown(course: dict) -> bool | None:
    return None if course["showcompletionconditions"] is None else bool(course["showcompletionconditions"])


def format_options(course: dict) -> dict:
    """course_get_format()->get_format_options(): topics/weeks have hiddensections and coursedisplay, the
    site format numsections."""
    if course["format"] in ("topics", "weeks"):
        return {"hiddensections": course.get("hiddensections", 1), "coursedisplay": course.get("coursedisplay", 0)}
    if course["format"] == "site":
        return {"numsections": course["numsections"]}
    return {}


@ws_function("core_course_get_courses",
             {"options": Single({"ids": Multiple(Value("int"), OPTIONAL)}, DEFAULT, {})})
def get_courses(site: MoodleStandIn, options: dict) -> list[dict]:
    """All courses (site course included) when no ids; unknown ids are simply absent. There is no ORDER BY:
    the answer comes in the rows' physical order (site.course_rows), not by id nor by the ids asked for."""
    ids = set(options.get("ids") or site.course_rows)
    orders = category_sortorders(site)
    return [course_info(site, site.courses[cid], orders) for cid in site.course_rows if cid in ids]


# --------------------------------------------------------------------------- core_course_get_categories


def _sequence(text: str) -> str:
    return re.sub(r"[^0-9,]", "", text)


@ws_function("core_course_get_categories",
             {"criteria": Multiple(Single({"key": Value("alpha"), "value": Value("raw")}), DEFAULT, []),
              "addsubcategories": Value("bool", DEFAULT, 1)})
def get_categories(site: MoodleStandIn, criteria: list[dict], addsubcategories: bool) -> list[dict]:
    if criteria:
        conditions, idsets = {}, []
        for criterion in criteria:
            key = criterion["key"].strip()
            if key in conditions:
                continue  # the first value of a key wins ('ids' is not remembered, so it repeats as AND)
            value = criterion["value"]
            if key in ("id", "parent", "visible"):
                conditions[key] = clean_param(value, "int")
            elif key == "ids":
                idsets.append({int(v) for v in _sequence(value).split(",") if v != ""})
            elif key == "idnumber":
                conditions[key] = value
            elif key == "name":
                conditions[key] = clean_param(value, "text")
            elif key == "theme":
                conditions[key] = clean_param(value, "theme")
            else:
                raise moodle_exception("criteriaerror", "Missing permissions to search on a criterion.",
                                       f"You can not search on this criteria: {key}")

        def matches(cat: dict) -> bool:
            return all((cat[k] or ("" if k in ("idnumber", "theme") else cat[k])) == v for k, v in conditions.items()) \
                and all(cat["id"] in ids for ids in idsets)

        found = {cid: cat for cid, cat in site.categories.items() if matches(cat)}
        if found and addsubcategories:
            extra = {}
            for cat in found.values():
                prefix = category_path(site, cat) + "/"
                for cid, other in site.categories.items():
                    if category_path(site, other).startswith(prefix) and all(
                            (other[k] or "") == v for k, v in conditions.items() if k in ("visible", "theme")):
                        extra[cid] = other
            found.update(extra)
        categories = list(found.values())
    else:
        categories = list(site.categories.values())
    orders = category_sortorders(site)
    rows = []
    for cat in sorted(categories, key=lambda c: category_path(site, c)):
        rows.append({"id": cat["id"], "name": format_string(cat["name"]), "idnumber": cat["idnumber"],
                     "description": cat["description"] or "", "descriptionformat": cat["descriptionformat"],
                     "parent": cat["parent"], "sortorder": orders[cat["id"]],
                     "coursecount": sum(1 for c in site.courses.values() if c["category"] == cat["id"]),
                     "visible": cat["visible"], "visibleold": cat["visibleold"], "timemodified": cat["timemodified"],
                     "depth": category_depth(site, cat), "path": category_path(site, cat),
                     "theme": clean_param(cat["theme"] or "", "theme")})
    return sorted(rows, key=lambda row: str(row["sortorder"]))  # usort with strcmp(): string order


# --------------------------------------------------------------------------- core_enrol_get_users_courses


def course_image(course: dict) -> str:
    """No overview file: $OUTPUT->get_generated_url_for_course(), an SVG pattern as a data URI."""
    colour = ["#0f6cbf", "#1f7e3a", "#8e2a8e", "#c04e00"][course["id"] % 4]
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><rect width="100" height="100" ' \
          f'fill="{colour}"/></svg>'
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def course_progress(site: MoodleStandIn, course: dict, userid: int) -> int | None:
    """progress::get_course_progress_percentage(): 100 once the course is complete; otherwise the share of
    activities completed, and no activity is modelled, so null (as for a course without activities)."""
    from .grades import is_course_complete
    if completion_enabled(course) and is_tracked_user(site, course, userid) \
            and is_course_complete(site, course["id"], userid):
        return 100
    return None


@ws_function("core_enrol_get_users_courses",
             {"userid": Value("int"), "returnusercount": Value("bool", DEFAULT, True)})
def get_users_courses(site: MoodleStandIn, userid: int, returnusercount: bool) -> list[dict]:
    from .grades import is_course_complete
    result = []
    for course in users_courses(site, userid):
        enabled = completion_enabled(course)
        row = {"id": course["id"], "shortname": format_string(course["shortname"]),
               "fullname": format_string(course["fullname"]), "displayname": format_string(course["fullname"])}
        if returnusercount:  # get_enrolled_sql($context): every enrolment, suspended ones too
            row["enrolledusercount"] = len(site.enrolments.get(course["id"], {}))
        access = site.course_access.get(course["id"], {}).get(userid)
        row.update({"idnumber": course["idnumber"], "visible": int(course["visible"]),
                    "summary": course["summary"] or "",
                    "summaryformat": FORMAT_HTML, "format": course["format"], "courseimage": course_image(course),
                    "showgrades": bool(course["showgrades"]), "lang": course["lang"] or "",
                    "enablecompletion": bool(course["enablecompletion"]),
                    "completionhascriteria": enabled and bool(course["has_completion_criteria"]),
                    "completionusertracked": enabled and is_tracked_user(site, course, userid),
                    "category": course["category"],
                    "progress": course_progress(site, course, userid),
                    "completed": is_course_complete(site, course["id"], userid) if enabled else None,
                    "startdate": course["startdate"], "enddate": course["enddate"], "marker": course["marker"],
                    "lastaccess": access, "isfavourite": False, "hidden": False, "overviewfiles": [],
                    "showactivitydates": bool(course["showactivitydates"]),
                    "showcompletionconditions": completion_conditions_shown(course),
                    "timemodified": course["timemodified"]})
        result.append(row)
    return result


# --------------------------------------------------------------------------- core_enrol_get_enrolled_users

DEFAULT_USER_FIELDS = ["id", "username", "fullname", "firstname", "lastname", "email", "address", "phone1", "phone2",
                       "department", "institution", "interests", "firstaccess", "lastaccess", "auth", "confirmed",
                       "idnumber", "lang", "theme", "timezone", "mailformat", "description", "descriptionformat",
                       "city", "country", "profileimageurlsmall", "profileimageurl", "customfields", "groups", "roles",
                       "preferences", "enrolledcourses", "suspended", "lastcourseaccess", "trackforums"]
# get_enrolled_users_returns() key order; clean_returnvalue() drops everything else (auth, suspended, ...).
ENROLLED_USER_ORDER = ["id", "username", "firstname", "lastname", "fullname", "email", "address", "phone1", "phone2",
                       "department", "institution", "idnumber", "interests", "firstaccess", "lastaccess",
                       "lastcourseaccess", "description", "descriptionformat", "city", "country",
                       "profileimageurlsmall", "profileimageurl", "customfields", "groups", "roles", "preferences",
                       "enrolledcourses"]


def enrolled_user_details(site: MoodleStandIn, user: dict, course: dict, userfields: list[str]) -> dict:
    """user_get_user_details($user, $course, $userfields) for a site admin."""
    for name in userfields:
        if name not in DEFAULT_USER_FIELDS:
            raise moodle_exception("invaliduserfield", f"Invalid user field: {name}")
    fields = set(userfields or DEFAULT_USER_FIELDS) | {"id", "fullname"}
    details = {"id": user["id"], "fullname": fullname(user)}
    for key in ("username", "firstname", "lastname", "email", "department"):
        if key in fields:
            details[key] = user[key]
    if "customfields" in fields:
        custom = []
        for field in site.profile_fields:
            value = user["customfields"].get(field["shortname"], field["defaultdata"])
            if field.get("visible", 2) and value not in (None, ""):
                custom.append({"type": field["datatype"], "value": value, "name": field["name"],
                               "shortname": field["shortname"]})
        if custom:
            details["customfields"] = custom
    if "profileimageurl" in fields:
        details["profileimageurl"] = site.picture_url("f1")
    if "profileimageurlsmall" in fields:
        details["profileimageurlsmall"] = site.picture_url("f2")
    for key in ("address", "phone1", "phone2"):  # an admin gets these even when not asked for
        if user.get(key):
            details[key] = user[key]
    if "description" in fields and user.get("description") is not None:
        details["description"], details["descriptionformat"] = user["description"], FORMAT_HTML
    for key in ("country", "city", "idnumber", "institution"):
        if key in fields and user.get(key):
            details[key] = user[key]
    for key in ("firstaccess", "lastaccess"):
        if key in fields:
            details[key] = user[key] or 0
    if "lastcourseaccess" in fields:
        details["lastcourseaccess"] = site.course_access.get(course["id"], {}).get(user["id"], 0)
    if "roles" in fields:
        record = enrolment(site, course["id"], user["id"])
        held = [] if record is None else [record["role"], *record.get("other_roles", [])]
        details["roles"] = [{"roleid": ROLES[role], "name": "", "shortname": role, "sortorder": 0}
                            for role in held if role]
    if "enrolledcourses" in fields:
        mine = users_courses(site, user["id"])
        if mine:
            details["enrolledcourses"] = [{"id": c["id"], "fullname": format_string(c["fullname"]),
                                           "shortname": format_string(c["shortname"])} for c in mine]
    if "preferences" in fields and user["id"] == site.token_user_id:
        details["preferences"] = own_preferences(user)
    return {key: details[key] for key in ENROLLED_USER_ORDER if key in details}


_SORTBY = ["id", "firstname", "lastname", "siteorder"]


@ws_function("core_enrol_get_enrolled_users",
             {"courseid": Value("int"),
              "options": Multiple(Single({"name": Value("alphanumext"), "value": Value("raw")}), DEFAULT, [])})
def get_enrolled_users(site: MoodleStandIn, courseid: int, options: list[dict]) -> list[dict]:
    onlyactive = onlysuspended = False
    userfields: list[str] = []
    limitfrom = limitnumber = groupid = 0
    sortby, descending = "id", False
    for option in options:
        name, value = option["name"], option["value"]
        if name == "withcapability":  # needs moodle/role:review, which the recorded web-service user lacks
            if site.token_user_id == ADMIN_ID:
                raise NotImplementedByStandIn("moodle_stand_in does not model capabilities (withcapability)")
            raise MoodleError("core\\exception\\required_capability_exception", "nopermissions",
                              "Sorry, but you do not currently have permissions to do that (Review permissions "
                              "for others).")
        if name == "groupid":
            groupid = clean_param(value, "int")
        elif name == "onlyactive":
            onlyactive = value not in ("", "0")
        elif name == "onlysuspended":
            onlysuspended = value not in ("", "0")
        elif name == "userfields":
            userfields = [clean_param(f, "alphanumext") for f in value.split(",")]
        elif name == "limitfrom":
            limitfrom = clean_param(value, "int")
        elif name == "limitnumber":
            limitnumber = clean_param(value, "int")
        elif name == "sortby":
            if value not in _SORTBY:
                raise invalid_parameter(f"Invalid value for sortby parameter (value: {value}), allowed values are: "
                                        + ",".join(_SORTBY))
            sortby = value
        elif name == "sortdirection":
            direction = value.upper()
            if direction not in ("ASC", "DESC"):
                raise invalid_parameter("Invalid value for sortdirection parameter\n                        "
                                        f"(value: {direction}),allowed values are: ASC,DESC")
            descending = direction == "DESC"
    course = site.courses.get(courseid)
    if course is None:
        raise MoodleError("dml_missing_record_exception", "invalidrecord",
                          "Can't find data record in database table course.")
    if onlyactive and onlysuspended:
        raise coding_exception("Both onlyactive and onlysuspended are set, this is probably not what you want!")
    if courseid == SITE_ID:  # everybody is enrolled on the front page
        members = [u for uid, u in site.users.items() if uid != GUEST_ID and not u.get("deleted")]
    elif groupid:
        members = []  # no groups are modelled: a group has no members
    else:
        enrolled = site.enrolments.get(courseid, {})
        members = [site.users[uid] for uid, record in enrolled.items()
                   if (not onlyactive or is_active(record)) and (not onlysuspended or not is_active(record))]

    def order(user: dict):
        if sortby == "siteorder":  # users_order_by_sql(): lastname, firstname, id
            return (user["lastname"], user["firstname"], user["id"])
        return (user[sortby], user["id"])

    members.sort(key=order, reverse=descending)
    if limitfrom:
        members = members[limitfrom:]
    if limitnumber:
        members = members[:limitnumber]
    return [enrolled_user_details(site, user, course, userfields) for user in members]

