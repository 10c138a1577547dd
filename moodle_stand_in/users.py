"""core_user_* functions of the Moodle stand-in, written from Moodle 4.5's user/externallib.php.

What a sync client must cope with is kept: create_users is one transaction (the first bad user fails
the call and nothing is created), update_users tries every user on its own and reports failures as
warnings, a menu profile field silently falls back to its default for a value outside its options,
and the per-record reasons of create_users are debuginfo only (invisible unless the site debugs).
"""

from __future__ import annotations

import copy
import hashlib
import html
import re
import time

from .server import (
    ADMIN_ID,
    DEFAULT,
    GUEST_ID,
    OPTIONAL,
    MoodleError,
    MoodleStandIn,
    Multiple,
    Single,
    Value,
    clean_param,
    coding_exception,
    invalid_parameter,
    moodle_exception,
    per_item,
    php_empty,
    ws_function,
)

# A text field made with the form: display size 30, maximum length 2048, not a password, no link.
TEXT_FIELD_PARAMS = {"param1": "30", "param2": "2048", "param3": "0", "param4": "", "param5": ""}
DEFAULT_PROFILE_FIELDS = [
    {"id": i, "shortname": short, "name": name, "datatype": kind, "defaultdata": "", "categoryid": 1,
     "sortorder": i, "required": 0, "visible": 2, **({"param1": options} if kind == "menu" else TEXT_FIELD_PARAMS)}
    for i, (short, name, kind, options) in enumerate([
        ("gender", "Gender", "menu", "Male\nFemale\nOther"),
        ("disability", "Disability", "menu", "Yes\nNo"),
        ("employmenttype", "Employment type", "menu", "Permanent\nContract\nTemporary"),
        ("uifref", "UIF reference", "text", ""),
        ("sdlref", "SDL reference", "text", ""),
        ("employeenumber", "Employee number", "text", ""),
    ], start=1)
]

INTERNAL_AUTHS = {"manual", "email", "nologin", "none"}
# Preferences core_user lets an admin set for another user; Moodle silently skips any other name.
KNOWN_PREFERENCES = {"auth_forcepasswordchange", "htmleditor", "forum_markasreadonnotification",
                     "badgeprivacysetting", "blogpagesize", "calendar_timeformat", "calendar_startwday",
                     "calendar_maxevents", "calendar_lookahead", "calendar_persistflt", "message_blocknoncontacts"}

_NAME_VALUE = {"customfields": Multiple(Single({"type": Value("alphanumext"), "value": Value("raw")}), OPTIONAL),
               "preferences": Multiple(Single({"type": Value("raw"), "value": Value("raw")}), OPTIONAL)}
_OPTIONAL_FIELDS = {name: Value(ptype, OPTIONAL) for name, ptype in [
    ("maildisplay", "int"), ("city", "text"), ("country", "alpha"), ("timezone", "timezone"),
    ("description", "raw"), ("firstnamephonetic", "notags"), ("lastnamephonetic", "notags"),
    ("middlename", "notags"), ("alternatename", "notags"), ("interests", "text"), ("institution", "text"),
    ("department", "text"), ("phone1", "notags"), ("phone2", "notags"), ("address", "text"),
    ("theme", "theme"), ("mailformat", "int")]}

# create_users_parameters() in 4.5: no 'suspended' (sending it is "Unexpected keys"), no 'id'.
CREATE_FIELDS = {
    "createpassword": Value("bool", OPTIONAL), "username": Value("username"),
    "auth": Value("auth", DEFAULT, "manual"), "password": Value("raw", OPTIONAL),
    "firstname": Value("notags"), "lastname": Value("notags"), "email": Value("raw_trimmed"),
    "idnumber": Value("raw", DEFAULT, ""), "lang": Value("lang", DEFAULT, "en"),
    "calendartype": Value("plugin", DEFAULT, "gregorian"), **_OPTIONAL_FIELDS, **_NAME_VALUE,
}
UPDATE_FIELDS = {
    "id": Value("int"), "username": Value("username", OPTIONAL), "auth": Value("auth", OPTIONAL),
    "suspended": Value("bool", OPTIONAL), "password": Value("raw", OPTIONAL),
    "firstname": Value("notags", OPTIONAL), "lastname": Value("notags", OPTIONAL),
    "email": Value("raw_trimmed", OPTIONAL), "userpicture": Value("int", OPTIONAL),
    "idnumber": Value("raw", OPTIONAL), "lang": Value("lang", OPTIONAL), "calendartype": Value("plugin", OPTIONAL),
    **_OPTIONAL_FIELDS, **_NAME_VALUE,
}
# Key order of core_user_external::user_description(); clean_returnvalue() emits keys in this order.
DETAIL_ORDER = ["id", "username", "firstname", "lastname", "fullname", "email", "address", "phone1", "phone2",
                "department", "institution", "idnumber", "interests", "firstaccess", "lastaccess", "auth",
                "suspended", "confirmed", "lang", "calendartype", "theme", "timezone", "mailformat", "trackforums",
                "description", "descriptionformat", "city", "country", "profileimageurlsmall", "profileimageurl",
                "customfields", "preferences"]

# mdl_user columns that are varchar(n) on PostgreSQL; a longer value makes the INSERT/UPDATE fail (Moodle
# checks no length itself), which Moodle reports as dml_write_exception.
USER_COLUMN_LENGTHS = {"auth": 20, "username": 100, "idnumber": 255, "firstname": 100, "lastname": 100,
                       "email": 100, "phone1": 20, "phone2": 20, "institution": 255, "department": 255,
                       "address": 255, "city": 120, "country": 2, "lang": 30, "calendartype": 30, "theme": 50,
                       "timezone": 100, "firstnamephonetic": 255, "lastnamephonetic": 255, "middlename": 255,
                       "alternatename": 255}
PREFERENCE_VALUE_LENGTH = 1333  # mdl_user_preferences.value

# PHP's FILTER_VALIDATE_EMAIL pattern (ext/filter/logical_filters.c, without FILTER_FLAG_EMAIL_UNICODE), which
# PHPMailer's default validator uses; matched against the UTF-8 bytes as PHP does, case-insensitively.
_QUOTED_OR_PLAIN = rb"(?:(?:\x22?\x5C[\x00-\x7E]\x22?)|(?:\x22?[^\x5C\x22]\x22?))"
_ATOM = rb"(?:(?:[\x21\x23-\x27\x2A\x2B\x2D\x2F-\x39\x3D\x3F\x5E-\x7E]+)|" \
        rb"(?:\x22(?:[\x01-\x08\x0B\x0C\x0E-\x1F\x21\x23-\x5B\x5D-\x7F]|(?:\x5C[\x00-\x7F]))*\x22))"
_DOMAIN = rb"(?:(?!.*[^.]{64,})(?:(?:(?:xn--)?[a-z0-9]+(?:-+[a-z0-9]+)*\.){1,126}){1,}" \
          rb"(?:(?:[a-z][a-z0-9]*)|(?:(?:xn--)[a-z0-9]+))(?:-+[a-z0-9]+)*)"
_IPV4 = rb"(?:(?:25[0-5])|(?:2[0-4][0-9])|(?:1[0-9]{2})|(?:[1-9]?[0-9]))"
_ADDRESS_LITERAL = (
    rb"(?:\[(?:(?:IPv6:(?:(?:[a-f0-9]{1,4}(?::[a-f0-9]{1,4}){7})|(?:(?!(?:.*[a-f0-9][:\]]){7,})"
    rb"(?:[a-f0-9]{1,4}(?::[a-f0-9]{1,4}){0,5})?::(?:[a-f0-9]{1,4}(?::[a-f0-9]{1,4}){0,5})?)))|"
    rb"(?:(?:IPv6:(?:(?:[a-f0-9]{1,4}(?::[a-f0-9]{1,4}){5}:)|(?:(?!(?:.*[a-f0-9]:){5,})"
    rb"(?:[a-f0-9]{1,4}(?::[a-f0-9]{1,4}){0,3})?::(?:[a-f0-9]{1,4}(?::[a-f0-9]{1,4}){0,3}:)?)))?"
    + _IPV4 + rb"(?:\." + _IPV4 + rb"){3}))\])")
_FILTER_VALIDATE_EMAIL = re.compile(
    rb"(?!" + _QUOTED_OR_PLAIN + rb"{255,})(?!" + _QUOTED_OR_PLAIN + rb"{65,}@)" + _ATOM + rb"(?:\." + _ATOM
    + rb")*@(?:" + _DOMAIN + rb"|" + _ADDRESS_LITERAL + rb")", re.IGNORECASE)


def valid_email(address: str) -> bool:
    """validate_email(): PHPMailer::validateAddress() (no line breaks, then PHP's FILTER_VALIDATE_EMAIL: at most
    320 bytes, a dotted domain, so ``user@localhost`` fails) and no '<' or '>'."""
    raw = address.encode("utf-8", "surrogateescape")
    return (bool(raw) and len(raw) <= 320 and not re.search("[\r\n<>]", address)
            and _FILTER_VALIDATE_EMAIL.fullmatch(raw) is not None)


def column_too_long(user: dict) -> str | None:
    """The PostgreSQL error an INSERT or UPDATE of these mdl_user (and preference) values would raise."""
    for name, length in USER_COLUMN_LENGTHS.items():
        if isinstance(user.get(name), str) and len(user[name]) > length:
            return f"ERROR:  value too long for type character varying({length})"
    if any(len(str(item["value"])) > PREFERENCE_VALUE_LENGTH for item in user.get("preferences") or []):
        return f"ERROR:  value too long for type character varying({PREFERENCE_VALUE_LENGTH})"
    return None


def write_error(debuginfo: str) -> MoodleError:
    return MoodleError("dml_write_exception", "dmlwriteexception", "Error writing to database", debuginfo)


def refuse_if_database_refuses(site: MoodleStandIn) -> None:
    """The write a site whose database refuses every write (``database_refuses_writes``) fails at."""
    if site.database_refuses_writes:
        raise write_error("ERROR:  could not extend file: No space left on device")


def password_policy_errors(password: str) -> str:
    """check_password_policy() with Moodle's default policy; '' when the password is acceptable."""
    rules = [(len(password) >= 8, "Passwords must be at least 8 characters long."),
             (any(c.isdigit() for c in password), "Passwords must have at least 1 digit(s)."),
             (any(c.islower() for c in password), "Passwords must have at least 1 lower case letter(s)."),
             (any(c.isupper() for c in password), "Passwords must have at least 1 upper case letter(s)."),
             (any(not (c.isdigit() or c.islower() or c.isupper()) for c in password),
              "The password must have at least 1 special character(s) such as *, -, or #.")]
    return "".join(f"<div>{message}</div>" for ok, message in rules if not ok)


def _hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def _trim(text: str) -> str:
    return text.strip(" \t\n\r\0\x0b")


# --------------------------------------------------------------------------- records


def new_record(site: MoodleStandIn, fields: dict) -> dict:
    """A mdl_user row with Moodle's defaults; ``customfields``/``preferences`` as dicts or {type,value} lists."""
    fields, now = dict(fields), int(time.time())
    record = {"id": fields.pop("id", None) or site.allocate_id(), "username": "", "auth": "manual",
              "confirmed": 1, "suspended": 0, "firstname": "", "lastname": "", "email": "", "idnumber": "",
              "lang": "en", "calendartype": "gregorian", "theme": "", "timezone": "99", "mailformat": 1,
              "maildisplay": 2, "trackforums": 0, "city": "", "country": "", "institution": "", "department": "",
              "phone1": "", "phone2": "", "address": "", "interests": "", "description": None,
              "descriptionformat": 1, "firstaccess": 0, "lastaccess": 0, "timecreated": now, "timemodified": now,
              "password_hash": "", "customfields": {}, "preferences": {}}
    for key in ("customfields", "preferences"):
        value = fields.pop(key, None) or {}
        record[key] = dict(value) if isinstance(value, dict) else {item["type"]: item["value"] for item in value}
    if "password" in fields:
        record["password_hash"] = _hash(fields.pop("password"))
    if "suspended" in fields:
        fields["suspended"] = int(bool(fields["suspended"]))
    record.update(fields)
    return record


def seed_users() -> dict[int, dict]:
    """Every Moodle site starts with the guest (id 1) and the admin (id 2)."""
    now = int(time.time())
    base = {"auth": "manual", "confirmed": 1, "suspended": 0, "idnumber": "", "lang": "en", "calendartype": "gregorian",
            "theme": "", "timezone": "99", "mailformat": 1, "maildisplay": 2, "trackforums": 0, "city": "",
            "country": "", "institution": "", "department": "", "phone1": "", "phone2": "", "address": "",
            "interests": "", "description": None, "descriptionformat": 1, "firstaccess": 0, "lastaccess": 0,
            "timecreated": now, "timemodified": now, "password_hash": "", "customfields": {}, "preferences": {}}
    return {GUEST_ID: {**base, "id": GUEST_ID, "username": "guest", "firstname": "Guest user", "lastname": " ",
                       "email": "root@localhost"},
            ADMIN_ID: {**copy.deepcopy(base), "id": ADMIN_ID, "username": "admin", "firstname": "Admin",
                       "lastname": "User", "email": "admin@example.com"}}


def save_profile_data(site: MoodleStandIn, record: dict, customfields: list[dict]) -> None:
    """profile_save_data(): unknown shortnames are ignored; a menu value outside the options
    (exact, case-sensitive match) is replaced by the field's default - no error, no warning."""
    given = {item["type"]: item["value"] for item in customfields}
    for field in site.profile_fields:
        if field["shortname"] not in given:
            continue
        value = given[field["shortname"]]
        if field["datatype"] == "menu" and value not in field["param1"].split("\n"):
            value = field["defaultdata"]
        record["customfields"][field["shortname"]] = value


def save_preferences(record: dict, preferences: list[dict]) -> None:
    for item in preferences:
        if item["type"] in KNOWN_PREFERENCES:
            record["preferences"][item["type"]] = item["value"]


def own_preferences(user: dict) -> list[dict]:
    """The token user's preferences as Moodle lists them: stored ones, then the cache's ``_lastloaded`` (an int)."""
    return [*({"name": k, "value": v} for k, v in user["preferences"].items()),
            {"name": "_lastloaded", "value": int(time.time())}]


def user_details(site: MoodleStandIn, user: dict) -> dict:
    """user_get_user_details() as seen by the admin token user, keys in user_description() order."""
    details = {"id": user["id"], "username": user["username"], "firstname": user["firstname"],
               "lastname": user["lastname"], "fullname": f"{user['firstname']} {user['lastname']}",
               "email": user["email"], "department": user["department"], "firstaccess": user["firstaccess"],
               "lastaccess": user["lastaccess"], "auth": user["auth"], "suspended": bool(user["suspended"]),
               "confirmed": bool(user["confirmed"]), "lang": user["lang"], "theme": user["theme"],
               "mailformat": user["mailformat"], "trackforums": user["trackforums"],
               "profileimageurlsmall": site.picture_url("f2"), "profileimageurl": site.picture_url("f1")}
    for key in ("address", "phone1", "phone2", "institution", "idnumber", "interests", "timezone", "city", "country"):
        if user.get(key):
            details[key] = user[key]
    if user.get("description") is not None:
        details["description"], details["descriptionformat"] = user["description"], user["descriptionformat"]
    fields = []
    for field in site.profile_fields:  # only fields with content are shown (show_field_content)
        value = user["customfields"].get(field["shortname"], field["defaultdata"])
        if value not in (None, ""):
            fields.append({"type": field["datatype"], "value": value, "displayvalue": html.escape(value, quote=False),
                           "name": field["name"], "shortname": field["shortname"]})
    if fields:
        details["customfields"] = fields
    if user["id"] == site.token_user_id:  # preferences are only returned for the calling user
        details["preferences"] = own_preferences(user)
    return {key: details[key] for key in DETAIL_ORDER if key in details}


def _like(pattern: str, text: str) -> bool:
    """$DB->sql_like(..., casesensitive false): % and _ are wildcards, backslash escapes."""
    regex, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            regex.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        regex.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.fullmatch("".join(regex), text, re.IGNORECASE | re.DOTALL) is not None


# --------------------------------------------------------------------------- functions


@ws_function("core_user_create_users", {"users": Multiple(Single(CREATE_FIELDS))}, writes=True)
def create_users(site: MoodleStandIn, users: list[dict]) -> list[dict]:
    """One delegated transaction: the first bad user fails the whole call and nothing is kept.

    Ids taken by users inserted before the failure are not given back (a database sequence is not
    rolled back), so ids on a real site have gaps after a failed batch; the stand-in does the same.
    """
    created: list[dict] = []
    for user in users:
        _check_new_user(site, user, created)
        created.append(_insert_new_user(site, user))
    for record in created:
        site.users[record["id"]] = record
    return [{"id": record["id"], "username": record["username"]} for record in created]


def _check_new_user(site: MoodleStandIn, user: dict, pending: list[dict]) -> None:
    for name in ("username", "firstname", "lastname"):
        if _trim(user[name]) == "":
            raise invalid_parameter(f"The field {name} cannot be blank")
    everyone = [*site.users.values(), *pending]
    if any(other["username"] == user["username"] for other in everyone):
        raise invalid_parameter(f"Username already exists: {user['username']}")
    if user["auth"] in ("mnet", "webservice"):
        raise invalid_parameter(f"Invalid authentication type: {user['auth']}")
    internal = user["auth"] in INTERNAL_AUTHS
    if internal and php_empty(user.get("password")) and php_empty(user.get("createpassword")):
        raise invalid_parameter("Invalid password: you must provide a password, or set createpassword.")
    if not valid_email(user["email"]):
        raise invalid_parameter(f"Email address is invalid: {user['email']}")
    if not site.allow_accounts_same_email and any(o["email"].lower() == user["email"].lower() for o in everyone):
        raise invalid_parameter(f"Email address already exists: {user['email']}")
    if internal and not user.get("createpassword"):
        errors = password_policy_errors(user["password"])
        if errors:  # user_create_user(): new moodle_exception($errmsg) - the errorcode is the HTML text
            raise moodle_exception(errors)
    too_long = column_too_long(user)
    if too_long:  # the INSERT fails and the whole transaction with it
        raise write_error(too_long)
    refuse_if_database_refuses(site)


def _insert_new_user(site: MoodleStandIn, user: dict) -> dict:
    user = dict(user)
    createpassword = user.pop("createpassword", False)
    password = user.pop("password", None)
    customfields, preferences = user.pop("customfields", []), user.pop("preferences", [])
    record = new_record(site, user)
    if user["auth"] in INTERNAL_AUTHS and not createpassword:
        record["password_hash"] = _hash(password)
    save_profile_data(site, record, customfields)
    if createpassword:  # Moodle mails a generated password and forces a change at first login
        record["preferences"]["auth_forcepasswordchange"] = "1"
    save_preferences(record, preferences)
    return record


@ws_function("core_user_update_users", {"users": Multiple(Single(UPDATE_FIELDS))}, writes=True)
def update_users(site: MoodleStandIn, users: list[dict]) -> dict:
    """Each user in its own transaction; a failure becomes a warning and the others still apply.

    A weak password's warning code is the policy's HTML, which the returns description refuses: the
    call then answers invalid_response_exception although every other user of it was updated."""
    return per_item(site, "user", users, _update_user)


def _update_user(site: MoodleStandIn, user: dict) -> None:
    existing = site.users.get(user["id"])
    if existing is None:
        raise moodle_exception("invaliduserid", "Invalid user ID", "Invalid user ID")
    if existing.get("deleted"):  # no lang string: the live site answers "error/usernotupdateddeleted"
        raise moodle_exception("usernotupdateddeleted")
    if existing["id"] == GUEST_ID:
        raise moodle_exception("usernotupdatedguest", None, "Cannot update guest account")
    email = user.get("email")
    if email is not None and email != existing["email"]:
        if not valid_email(email):
            raise moodle_exception("useremailinvalid", None, "Invalid email address")
        if not site.allow_accounts_same_email and any(
                other["id"] != existing["id"] and other["email"].lower() == email.lower()
                for other in site.users.values()):
            raise moodle_exception("useremailduplicate", "Duplicate address", "Duplicate email address")
    if "password" in user:
        errors = password_policy_errors(user["password"])
        if errors:
            raise moodle_exception(errors)
    username = user.get("username")
    if username is not None and any(o["username"] == username and o["id"] != existing["id"]
                                    for o in site.users.values()):  # unique index (mnethostid, username)
        raise write_error("duplicate key value violates unique constraint")
    too_long = column_too_long(user)
    if too_long:
        raise write_error(too_long)
    refuse_if_database_refuses(site)
    record = copy.deepcopy(existing)
    for key, value in user.items():
        if key not in ("id", "password", "customfields", "preferences", "userpicture"):
            record[key] = int(value) if key == "suspended" else value
    if "password" in user:
        record["password_hash"] = _hash(user["password"])
    save_profile_data(site, record, user.get("customfields", []))
    save_preferences(record, user.get("preferences", []))
    if record != existing:
        record["timemodified"] = int(time.time())
    site.users[existing["id"]] = record


_FIELD_TYPES = {"id": "int", "idnumber": "raw", "username": "username", "email": "raw_trimmed"}


@ws_function("core_user_get_users_by_field", {"field": Value("alpha"), "values": Multiple(Value("raw"))})
def get_users_by_field(site: MoodleStandIn, field: str, values: list[str]) -> list[dict]:
    """Exact match (a plain SQL IN): values not found are simply absent from the answer. Deleted accounts are
    not left out (4.5.6 answers them as delete_user() left them: renamed username, md5 e-mail, no ID number,
    ``suspended`` false and no ``deleted`` key), so by id they are found, by their old values not."""
    if field not in _FIELD_TYPES:
        raise coding_exception("invalid field parameter",
                               f"The search field '{field}' is not supported, look at the web service documentation")
    wanted = set()
    for value in values:
        cleaned = clean_param(value, _FIELD_TYPES[field])
        same = re.fullmatch(r"\s*[+-]?\d+\s*", value) is not None if field == "id" else value == cleaned
        if not same:
            raise invalid_parameter(f"The field '{field}' value is invalid: {value}(cleaned value: {cleaned})")
        wanted.add(cleaned)
    found = [user_details(site, u) for _, u in sorted(site.users.items()) if u[field] in wanted]
    return [details for details in found if not php_empty(details.get(field))]


_CRITERIA_TYPES = {"id": "int", "idnumber": "raw", "username": "username", "email": "raw_trimmed",
                   "auth": "auth", "lastname": "notags", "firstname": "notags"}


@ws_function("core_user_get_users",
             {"criteria": Multiple(Single({"key": Value("alpha"), "value": Value("raw")}))})
def get_users(site: MoodleStandIn, criteria: list[dict]) -> dict:
    """AND of the criteria (over accounts not deleted); email, firstname and lastname use a case-insensitive
    LIKE (% and _)."""
    warnings, used, conditions = [], set(), []
    for criterion in criteria:
        key = criterion["key"]
        if key in used:
            raise moodle_exception("keyalreadyset", None, f"The key {key} can only be sent once")
        used.add(key)
        if key not in _CRITERIA_TYPES:
            warnings.append({"item": key, "warningcode": "invalidfieldparameter", "message":
                             f"The search key '{key}' is not supported, look at the web service documentation"})
            continue
        conditions.append((key, clean_param(criterion["value"], _CRITERIA_TYPES[key])))

    def matches(user: dict) -> bool:
        return all(_like(value, user[key]) if key in ("email", "firstname", "lastname") else user[key] == value
                   for key, value in conditions)

    found = [user_details(site, u) for _, u in sorted(site.users.items()) if not u.get("deleted") and matches(u)]
    return {"users": [d for d in found if all(not php_empty(d.get(key)) for key, _ in conditions)],
            "warnings": warnings}
