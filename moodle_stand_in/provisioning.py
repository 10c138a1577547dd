"""Course, enrolment, role and user-deletion functions a provisioning client (a school MIS) needs, answering
like the live 4.5.6 site recorded in ``../shared/moodle-contract-school`` (its README lists the quirks kept here).

* create_courses, enrol_manual_enrol_users, enrol_manual_unenrol_users, core_role_(un)assign_roles and
  core_user_delete_users are one transaction per call: the first bad item fails the call, nothing is kept.
* update_courses and delete_courses work item by item and answer warnings; an update to a category that
  does not exist has already written the course (category id and visible 0) when it warns.
* Enrolling again always writes status and dates (a plain re-enrol re-activates a suspended enrolment and
  clears its dates) and adds a role without removing any; only unassign_roles removes a role.
* A course's manual enrolment method may be absent or disabled (``MoodleStandIn.set_manual_enrolment``):
  enrolling then fails with wsnoinstance; unenrolling fails only when it is absent.
* Deleting a user keeps its row, marked deleted, as delete_user() does (username ``<e-mail>.<time>``, e-mail
  the md5 of the old username, no ID number, no profile fields); its enrolments, roles, grades and
  completions go (``userdeleted`` when enrolled again, ``invaliduser`` when deleted again).
"""

from __future__ import annotations

import hashlib
import time

from .courses import (
    ROLES,
    SITE_ID,
    category_sortorders,
    course_sortorder,
    delete_course,
    export_customfields,
    format_string,
    fullname,
    is_active,
)
from .courses import add_course as insert_course
from .server import (
    ADMIN_ID,
    DEFAULT,
    GUEST_ID,
    OPTIONAL,
    MoodleError,
    MoodleStandIn,
    Multiple,
    NotImplementedByStandIn,
    Single,
    Value,
    clean_param,
    invalid_parameter,
    moodle_exception,
    per_item,
    ws_function,
)
from .users import refuse_if_database_refuses

WEEK = 7 * 86_400
YEAR = 365 * 86_400
MANUAL_ENABLED, MANUAL_DISABLED, MANUAL_ABSENT = "enabled", "disabled", "absent"
# Roles the recorded web-service user's role may assign ("Allow role assignments"); an admin may assign all
# roles of the course context level.
ASSIGNABLE_BY_SERVICE_USER = {"editingteacher", "student"}
ASSIGNABLE_BY_ADMIN = {"manager", "editingteacher", "teacher", "student"}
COURSE_CONTACT_ROLE = "editingteacher"  # $CFG->coursecontact
FILTERS = ("displayh5p", "activitynames", "mathjaxloader", "emoticon", "urltolink", "mediaplugin")
COURSE_BY_FIELD_FIELDS = ("id", "ids", "shortname", "idnumber", "category", "sectionid")
_FORMAT_OPTION = Single({"name": Value("alphanumext"), "value": Value("raw")})
_CUSTOM_FIELD = Single({"shortname": Value("alphanumext"), "value": Value("raw")})
_COURSE_SETTINGS = {
    "idnumber": Value("raw", OPTIONAL), "summary": Value("raw", OPTIONAL), "summaryformat": Value("int", DEFAULT, 1),
    "format": Value("plugin", DEFAULT, "topics"), "showgrades": Value("int", OPTIONAL),
    "newsitems": Value("int", OPTIONAL), "startdate": Value("int", OPTIONAL), "enddate": Value("int", OPTIONAL),
    "numsections": Value("int", OPTIONAL), "maxbytes": Value("int", OPTIONAL), "showreports": Value("int", OPTIONAL),
    "visible": Value("int", OPTIONAL), "hiddensections": Value("int", OPTIONAL), "groupmode": Value("int", OPTIONAL),
    "groupmodeforce": Value("int", OPTIONAL), "defaultgroupingid": Value("int", OPTIONAL),
    "enablecompletion": Value("int", OPTIONAL), "completionnotify": Value("int", OPTIONAL),
    "lang": Value("safedir", OPTIONAL), "forcetheme": Value("plugin", OPTIONAL),
    "courseformatoptions": Multiple(_FORMAT_OPTION, OPTIONAL), "customfields": Multiple(_CUSTOM_FIELD, OPTIONAL),
}
CREATE_COURSE = {"fullname": Value("text"), "shortname": Value("text"), "categoryid": Value("int"), **_COURSE_SETTINGS}
UPDATE_COURSE = {"id": Value("int"), "fullname": Value("text", OPTIONAL), "shortname": Value("text", OPTIONAL),
                 "categoryid": Value("int", OPTIONAL),
                 **{k: Value(v.type, OPTIONAL) if isinstance(v, Value) else v for k, v in _COURSE_SETTINGS.items()}}
_PLAIN_COURSE_FIELDS = ("fullname", "shortname", "idnumber", "summary", "summaryformat", "format", "showgrades",
                        "newsitems", "startdate", "enddate", "maxbytes", "showreports", "visible", "groupmode",
                        "groupmodeforce", "defaultgroupingid", "enablecompletion", "completionnotify", "lang")
_ROLE_CHANGE = Single({"roleid": Value("int"), "userid": Value("int"), "contextid": Value("int", OPTIONAL),
                       "contextlevel": Value("alpha", OPTIONAL), "instanceid": Value("int", OPTIONAL)})


class PhpError(MoodleError):
    """A PHP Error (not a Moodle exception) caught by the web-service layer: no errorcode key in the answer."""

    def __init__(self, message: str):
        super().__init__("Error", "", message)

    def to_dict(self, debug: bool = False) -> dict:
        return {"exception": self.exception, "message": self.message}


def missing_user() -> MoodleError:
    return MoodleError("dml_missing_record_exception", "invaliduser", "Invalid user")


def no_manual_instance(courseid: int) -> MoodleError:
    return moodle_exception("wsnoinstance",
                            f"Manual enrolment plugin instance doesn't exist or is disabled for the course (id = "
                            f"{courseid})")


# --------------------------------------------------------------------------- state


def active_user(site: MoodleStandIn, userid: int) -> dict | None:
    """The user's row unless there is none or it is deleted (most functions read ``deleted = 0`` rows only)."""
    user = site.users.get(userid)
    return None if user is None or user.get("deleted") else user


def manual_enrolment(course: dict) -> str:
    return MANUAL_ABSENT if course["id"] == SITE_ID else course.get("manual_enrolment", MANUAL_ENABLED)


def set_manual_enrolment(site: MoodleStandIn, courseid: int, status: str) -> None:
    if status not in (MANUAL_ENABLED, MANUAL_DISABLED, MANUAL_ABSENT):
        raise ValueError(f"manual enrolment status must be enabled, disabled or absent, not {status!r}")
    if courseid not in site.courses or courseid == SITE_ID:
        raise ValueError(f"no course {courseid} with enrolment methods")
    site.courses[courseid]["manual_enrolment"] = status


def roles_of(record: dict) -> list[str]:
    """An enrolment's roles in the course: the first one and any added since."""
    return [role for role in (record.get("role"), *record.get("other_roles", [])) if role]


def delete_user(site: MoodleStandIn, userid: int) -> None:
    """delete_user() (lib/moodlelib.php): the row stays, marked deleted, with its username renamed to
    ``<e-mail>.<unix time>`` (cleaned as a username; a number higher while taken), its e-mail the md5 of the old
    username, its ID number and picture cleared; profile data, preferences, enrolments, roles, grades and
    completions go. Names, auth, ``suspended`` and access times are left as they were."""
    user = active_user(site, userid)
    if user is None or userid in (GUEST_ID, ADMIN_ID):
        raise ValueError(f"no user {userid} that can be deleted")
    taken = {other["username"] for other in site.users.values()}
    stamp = int(time.time())
    email = user["email"] or f"{user['username']}.{userid}@unknownemail.invalid"
    while clean_param(f"{email}.{stamp}", "username") in taken:
        stamp += 1
    user.update(deleted=1, username=clean_param(f"{email}.{stamp}", "username"),
                email=hashlib.md5(user["username"].encode()).hexdigest(), idnumber="", picture=0,
                customfields={}, preferences={}, timemodified=int(time.time()))
    for table in (site.enrolments, site.course_access, site.grades, site.completions):
        for members in table.values():
            members.pop(userid, None)
    for course in site.courses.values():
        course.get("other_users", {}).pop(str(userid), None)


def set_enrolment_dates(record: dict, timestart: int, timeend: int) -> None:
    record["timestart"], record["timeend"] = int(timestart), int(timeend)


# --------------------------------------------------------------------------- core_course_get_courses_by_field


def course_format_options(course: dict) -> list[dict]:
    """get_format_options() as 4.5 lists them; an unknown format shows the default (topics) format's."""
    options = [{"name": "hiddensections", "value": course.get("hiddensections", 1)},
               {"name": "coursedisplay", "value": course.get("coursedisplay", 0)}]
    if course["format"] == "weeks":
        options.append({"name": "automaticenddate", "value": course.get("automaticenddate", 1)})
    return [*options, {"name": "indentation", "value": "1"}]


def course_contacts(site: MoodleStandIn, course: dict) -> list[dict]:
    members = site.enrolments.get(course["id"], {})
    return [{"id": userid, "fullname": fullname(site.users[userid])} for userid, record in sorted(members.items())
            if COURSE_CONTACT_ROLE in roles_of(record) and is_active(record) and userid in site.users]


def course_by_field_info(site: MoodleStandIn, course: dict, orders: dict[int, int]) -> dict:
    """core_course_external::get_courses_by_field() for a caller with moodle/course:update, keys in 4.5 order."""
    category = site.categories.get(course["category"])
    info = {"id": course["id"], "fullname": format_string(course["fullname"]),
            "displayname": format_string(course["fullname"]), "shortname": format_string(course["shortname"]),
            "courseimage": f"{site.base_url}/pluginfile.php/{course['id'] + 1}/course/generated/course.svg",
            "categoryid": course["category"], "categoryname": format_string(category["name"]) if category else "",
            "sortorder": course_sortorder(site, course, orders), "summary": course["summary"] or "",
            "summaryformat": course["summaryformat"], "summaryfiles": [], "overviewfiles": [],
            "showactivitydates": bool(course["showactivitydates"]),
            "showcompletionconditions": None if course["showcompletionconditions"] is None
            else bool(course["showcompletionconditions"]),
            "contacts": course_contacts(site, course),
            "enrollmentmethods": ["manual"] if manual_enrolment(course) == MANUAL_ENABLED else [],
            "customfields": export_customfields(site, course)}
    info.update({key: course[key] for key in ("idnumber", "format", "showgrades", "newsitems", "startdate", "enddate",
                                              "maxbytes", "showreports")})
    info.update({"visible": int(course["visible"]), "groupmode": course["groupmode"],
                 "groupmodeforce": course["groupmodeforce"], "defaultgroupingid": course["defaultgroupingid"],
                 "enablecompletion": int(course["enablecompletion"]), "completionnotify": course["completionnotify"],
                 "lang": course["lang"] or "", "theme": course["theme"] or "", "marker": course["marker"],
                 "legacyfiles": 0, "calendartype": "", "timecreated": course["timecreated"],
                 "timemodified": course["timemodified"], "requested": 0, "cacherev": course["timemodified"],
                 "filters": [{"filter": name, "localstate": 0, "inheritedstate": 1} for name in FILTERS]})
    if course["id"] != SITE_ID:
        info["courseformatoptions"] = course_format_options(course)
    return info


@ws_function("core_course_get_courses_by_field",
             {"field": Value("alpha", DEFAULT, ""), "value": Value("raw", DEFAULT, "")})
def get_courses_by_field(site: MoodleStandIn, field: str, value: str) -> dict:
    """By id order. ``idnumber`` '' finds every course without ID number (the site course first); ``ids`` with
    an id that does not exist crashes as 4.5.6 does (a PHP Error, no errorcode)."""
    if field and field not in COURSE_BY_FIELD_FIELDS:
        raise invalid_parameter("Invalid field name")
    if field == "sectionid":
        raise NotImplementedByStandIn("moodle_stand_in does not model course sections (field sectionid)")
    if field == "":
        found = list(site.courses.values())
    elif field in ("id", "category"):
        key = "id" if field == "id" else "category"
        found = [course for course in site.courses.values() if course[key] == clean_param(value, "int")]
    elif field == "ids":
        ids = [clean_param(part, "int") for part in value.split(",") if part.strip()]
        if any(courseid not in site.courses for courseid in ids):
            raise PhpError('Attempt to assign property "contextvalidated" on null')
        found = [site.courses[courseid] for courseid in set(ids)]
    else:
        found = [course for course in site.courses.values() if course[field] == value]
    orders = category_sortorders(site)
    return {"courses": [course_by_field_info(site, course, orders) for course in sorted(found, key=lambda c: c["id"])],
            "warnings": []}


# --------------------------------------------------------------------------- core_course_create/update/delete


def _format_option(course: dict, name: str) -> object | None:
    for option in course.get("courseformatoptions") or []:
        if option["name"] == name:
            return option["value"]
    return None


def _automatic_end_date(course: dict) -> None:
    """format_weeks: with automaticenddate on (its default) the end date is start + the sections in weeks (one
    week without sections), whatever end date was sent."""
    if course["format"] == "weeks" and int(course.get("automaticenddate", 1)):
        course["enddate"] = course["startdate"] + max(int(course["numsections"]), 1) * WEEK


def _check_names(site: MoodleStandIn, course: dict, courseid: int | None = None) -> None:
    """create_course()/update_course(): short name and ID number are unique on the site (exact, case-sensitive)."""
    others = [other for other in site.courses.values() if other["id"] != courseid]
    if course.get("shortname") and any(other["shortname"] == course["shortname"] for other in others):
        raise moodle_exception("shortnametaken", f"Short name is already used for another course "
                                                 f"({course['shortname']})")
    if course.get("idnumber") and any(other["idnumber"] == course["idnumber"] for other in others):
        raise moodle_exception("courseidnumbertaken", f"ID number is already used for another course "
                                                      f"({course['idnumber']})")


@ws_function("core_course_create_courses", {"courses": Multiple(Single(CREATE_COURSE))}, writes=True)
def create_courses(site: MoodleStandIn, courses: list[dict]) -> list[dict]:
    """One transaction. A course made here has only section 0 unless courseformatoptions numsections is sent,
    starts today without startdate and lasts a year without enddate; it has no completion criteria."""
    made: list[int] = []
    try:
        for course in courses:
            if course["categoryid"] not in site.categories:
                raise moodle_exception("errorcatcontextnotvalid", f"You cannot execute functions in the category "
                                       f"context (category id:{course['categoryid']}). The context error message "
                                       "was: Invalid parameter value detected")
            for name in ("fullname", "shortname"):
                if course[name].strip() == "":
                    raise moodle_exception("errorinvalidparam", f'The param "{name}" is invalid.')
            _check_names(site, course)
            refuse_if_database_refuses(site)
            made.append(_insert(site, course)["id"])
    except MoodleError:
        for courseid in made:
            delete_course(site, courseid)
        raise
    return [{"id": courseid, "shortname": site.courses[courseid]["shortname"]} for courseid in made]


def _insert(site: MoodleStandIn, course: dict) -> dict:
    today = int(time.time()) // 86_400 * 86_400
    numsections = _format_option(course, "numsections")
    start = course.get("startdate", today)
    fields = {key: course[key] for key in _PLAIN_COURSE_FIELDS
              if key in course and key not in ("fullname", "shortname", "summaryformat")}
    fields.update(startdate=start, enddate=course.get("enddate", start + YEAR),
                  numsections=int(numsections if numsections is not None else course.get("numsections", 0)),
                  has_completion_criteria=False)
    record = insert_course(site, course["shortname"], course["fullname"], course["categoryid"],
                           customfields={f["shortname"]: f["value"] for f in course.get("customfields") or []},
                           **fields)
    automatic = _format_option(course, "automaticenddate")
    if automatic is not None:
        record["automaticenddate"] = int(automatic)
    _automatic_end_date(record)
    return record


@ws_function("core_course_update_courses", {"courses": Multiple(Single(UPDATE_COURSE))}, writes=True)
def update_courses(site: MoodleStandIn, courses: list[dict]) -> dict:
    """Item by item: a failure is a warning and the other items still apply."""
    return per_item(site, "course", courses, _update)


def _update(site: MoodleStandIn, change: dict) -> None:
    course = site.courses.get(change["id"])
    if course is None:
        raise MoodleError("dml_missing_record_exception", "invalidrecord",
                          "Can't find data record in database table course.")
    _check_names(site, change, course["id"])
    refuse_if_database_refuses(site)
    for key in _PLAIN_COURSE_FIELDS:
        if key in change:
            course[key] = change[key]
    numsections = _format_option(change, "numsections")
    if numsections is not None:
        course["numsections"] = int(numsections)
    automatic = _format_option(change, "automaticenddate")
    if automatic is not None:
        course["automaticenddate"] = int(automatic)
    _automatic_end_date(course)
    course["timemodified"] = int(time.time())
    if "categoryid" in change:
        course["category"] = change["categoryid"]
        if change["categoryid"] not in site.categories:  # the row is already written when the move fails
            course["visible"] = 0
            raise MoodleError("dml_missing_record_exception", "invalidrecord",
                              "Can't find data record in database table course_categories.")


@ws_function("core_course_delete_courses", {"courseids": Multiple(Value("int"))}, writes=True)
def delete_courses(site: MoodleStandIn, courseids: list[int]) -> dict:
    """Item by item; deleting a course removes its enrolments, grades and completions."""
    warnings = []
    for courseid in courseids:
        if courseid == SITE_ID:
            warnings.append({"item": "course", "itemid": courseid, "warningcode": "cannotdeletecategorycourse",
                             "message": f"Course {courseid} failed to be deleted"})
        elif courseid not in site.courses:
            warnings.append({"item": "course", "itemid": courseid, "warningcode": "unknowncourseidnumber",
                             "message": f"Unknown course ID {courseid}"})
        else:
            delete_course(site, courseid)
    return {"warnings": warnings}


# --------------------------------------------------------------------------- manual enrolment and roles


def assignable_roles(site: MoodleStandIn) -> dict[int, str]:
    names = ASSIGNABLE_BY_ADMIN if site.token_user_id == ADMIN_ID else ASSIGNABLE_BY_SERVICE_USER
    return {roleid: name for name, roleid in ROLES.items() if name in names}


def _enrollable_user(site: MoodleStandIn, userid: int) -> None:
    if site.users.get(userid, {}).get("deleted"):  # core_user::require_active_user()
        raise moodle_exception("userdeleted")
    if userid not in site.users:
        raise missing_user()


@ws_function("enrol_manual_enrol_users",
             {"enrolments": Multiple(Single({"roleid": Value("int"), "userid": Value("int"), "courseid": Value("int"),
                                             "timestart": Value("int", OPTIONAL), "timeend": Value("int", OPTIONAL),
                                             "suspend": Value("int", OPTIONAL)}))}, writes=True)
def enrol_users(site: MoodleStandIn, enrolments: list[dict]) -> None:
    """One transaction; every enrolment sent is written whole: status (active unless suspend) and both dates
    (0 when not sent), and its role added to those the user has."""
    roles = assignable_roles(site)
    pending = []
    for item in enrolments:
        course = site.courses.get(item["courseid"])
        if course is None:
            raise invalid_parameter("Context does not exist")
        if item["roleid"] not in roles:
            raise moodle_exception("wsusercannotassign", f"You don't have the permission to assign this role "
                                   f"({item['roleid']}) to this user ({item['userid']}) in this course "
                                   f"({item['courseid']}).")
        if manual_enrolment(course) != MANUAL_ENABLED:
            raise no_manual_instance(item["courseid"])
        _enrollable_user(site, item["userid"])
        refuse_if_database_refuses(site)
        pending.append(item)
    for item in pending:
        members = site.enrolments.setdefault(item["courseid"], {})
        record = members.get(item["userid"]) or {"timecreated": int(time.time())}
        role = roles[item["roleid"]]
        if not roles_of(record):
            record["role"] = role
        elif role not in roles_of(record):
            record["other_roles"] = [*record.get("other_roles", []), role]
        record["status"] = 1 if item.get("suspend") else 0
        set_enrolment_dates(record, item.get("timestart", 0), item.get("timeend", 0))
        members[item["userid"]] = record


@ws_function("enrol_manual_unenrol_users",
             {"enrolments": Multiple(Single({"userid": Value("int"), "courseid": Value("int"),
                                             "roleid": Value("int", OPTIONAL)}))}, writes=True)
def unenrol_users(site: MoodleStandIn, enrolments: list[dict]) -> None:
    """One transaction; the whole enrolment and its roles go (``roleid`` is ignored); not enrolled is no error;
    a disabled manual method still unenrols."""
    for item in enrolments:
        course = site.courses.get(item["courseid"])
        if course is None:
            raise invalid_parameter("Context does not exist")
        if manual_enrolment(course) == MANUAL_ABSENT:
            raise no_manual_instance(item["courseid"])
        if item["userid"] not in site.users:
            raise missing_user()
    for item in enrolments:
        site.enrolments.get(item["courseid"], {}).pop(item["userid"], None)
        site.course_access.get(item["courseid"], {}).pop(item["userid"], None)


def _role_context(site: MoodleStandIn, item: dict) -> dict:
    if item.get("contextlevel") != "course" or "instanceid" not in item:
        raise NotImplementedByStandIn("moodle_stand_in models role assignments in course contexts only")
    course = site.courses.get(item["instanceid"])
    if course is None:
        raise invalid_parameter("Context does not exist")
    return course


def _role_changes(site: MoodleStandIn, items: list[dict]) -> list[tuple[dict, str]]:
    """Each change's course and role name, all checked before any is made (one transaction)."""
    roles = assignable_roles(site)
    checked = []
    for item in items:
        course = _role_context(site, item)
        if item["roleid"] not in roles:
            raise invalid_parameter(f"Can not assign roleid={item['roleid']} in contextid=")
        if item["userid"] not in site.users:
            raise missing_user()
        checked.append((course, roles[item["roleid"]]))
    return checked


@ws_function("core_role_assign_roles", {"assignments": Multiple(_ROLE_CHANGE)}, writes=True)
def assign_roles(site: MoodleStandIn, assignments: list[dict]) -> None:
    """A role for an enrolled user is added to its enrolment's; for anyone else it makes an 'other user' of the
    course, who is not a participant."""
    for item, (course, role) in zip(assignments, _role_changes(site, assignments), strict=True):
        record = site.enrolments.get(course["id"], {}).get(item["userid"])
        if record is None:
            others = course.setdefault("other_users", {}).setdefault(str(item["userid"]), [])
            if role not in others:
                others.append(role)
        elif not roles_of(record):
            record["role"] = role
        elif role not in roles_of(record):
            record["other_roles"] = [*record.get("other_roles", []), role]


@ws_function("core_role_unassign_roles", {"unassignments": Multiple(_ROLE_CHANGE)}, writes=True)
def unassign_roles(site: MoodleStandIn, unassignments: list[dict]) -> None:
    """Removes one role; the enrolment stays (with no role if it was the last); a role not held is no error."""
    for item, (course, role) in zip(unassignments, _role_changes(site, unassignments), strict=True):
        record = site.enrolments.get(course["id"], {}).get(item["userid"])
        if record is not None and role in roles_of(record):
            remaining = [other for other in roles_of(record) if other != role]
            record["role"], record["other_roles"] = (remaining[0] if remaining else None), remaining[1:]
        others = course.get("other_users", {}).get(str(item["userid"]), [])
        if role in others:
            others.remove(role)


# --------------------------------------------------------------------------- users and cohorts


@ws_function("core_user_delete_users", {"userids": Multiple(Value("int"))}, writes=True)
def delete_users(site: MoodleStandIn, userids: list[int]) -> None:
    """One transaction. The guest is 'deleted' without error but stays (delete_user() refuses it quietly)."""
    for userid in userids:
        if active_user(site, userid) is None:  # get_record(user, deleted 0, MUST_EXIST)
            raise missing_user()
        if userid == ADMIN_ID:
            raise moodle_exception("useradminodelete", "Administrator accounts cannot be deleted.")
        if userid == site.token_user_id:
            raise moodle_exception("usernotdeletederror", "User not deleted - error")
    for userid in userids:
        if userid != GUEST_ID and active_user(site, userid) is not None:
            delete_user(site, userid)


@ws_function("core_cohort_get_cohorts", {"cohortids": Multiple(Value("int"), DEFAULT, [])})
def get_cohorts(site: MoodleStandIn, cohortids: list[int]) -> list:
    """The stand-in has no cohorts (the provisioning flow leaves cohorts to the school)."""
    if cohortids:
        raise NotImplementedByStandIn("moodle_stand_in has no cohorts to look up by id")
    return []
