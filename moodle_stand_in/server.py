"""HTTP side of the Moodle stand-in: request decoding, authentication, dispatch, error objects.

The aim is that a client cannot tell this server from a Moodle 4.5 site's REST endpoint for the
functions it implements, including the awkward parts a client has to cope with: errors come back as
HTTP 200 with a JSON error object, a disabled web service is an empty HTTP 403, parameters are PHP
form arrays validated as strictly as ``external_api::validate_parameters`` does, and exception class
names are the 4.5 namespaced ones. ``tests/moodle_stand_in/contract/README.md`` lists each quirk with the Moodle
source it was checked against.

Function families live in their own modules (``users.py``; ``courses.py`` for courses, categories and
enrolments; ``grades.py`` for the user grade report and course completion; ``signup.py`` for
auth_email) and register themselves with :func:`ws_function`, declaring their parameters with
:class:`Value`, :class:`Single` and :class:`Multiple` the way Moodle's ``*_parameters()`` methods do.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

REST_PATH = "/webservice/rest/server.php"
RELEASE = "4.5.6 (Build: 20250811)"
VERSION = "2024100706"         # core's; a plugin's functions (gradereport_user_*, auth_email_*, ...) carry its own
PLUGIN_VERSION = "2024100700"
SITE_NAME = "Moodle stand-in"
GUEST_ID, ADMIN_ID = 1, 2
MAX_INPUT_VARS = 5000  # Moodle 4.5 requires PHP max_input_vars >= 5000; PHP drops the rest silently.
# What admin/cli/maintenance.php --enable writes to climaintenance.html on 4.5.6, as the live site sent it (CRLF, a
# blank line after </html>).
CLI_MAINTENANCE_PAGE = "\r\n".join(
    Path(__file__).with_name("climaintenance.html").read_text(encoding="utf-8").splitlines() + ["", ""])


# --------------------------------------------------------------------------- errors


class MoodleError(Exception):
    """An exception as ``webservice_rest_server::generate_error`` serialises it.

    ``message`` is what a production site sends; ``debuginfo`` only reaches the client when the
    site has debugging on, which is why per-record reasons such as "Username already exists: x" are
    invisible to a client of a normally configured site.
    """

    def __init__(self, exception: str, errorcode: str, message: str, debuginfo: str | None = None):
        super().__init__(message if debuginfo is None else f"{message} ({debuginfo})")
        self.exception, self.errorcode, self.message, self.debuginfo = exception, errorcode, message, debuginfo

    def text(self, debug: bool = False) -> str:
        """getMessage(): with DEBUG_DEVELOPER + debugdisplay Moodle appends the debuginfo."""
        return f"{self.message} ({self.debuginfo})" if debug and self.debuginfo else self.message

    def to_dict(self, debug: bool = False) -> dict:
        body = {"exception": self.exception, "errorcode": self.errorcode, "message": self.text(debug)}
        if debug and self.debuginfo:
            body["debuginfo"] = self.debuginfo
        return body


def moodle_exception(errorcode: str, message: str | None = None, debuginfo: str | None = None) -> MoodleError:
    """``new moodle_exception($errorcode)``; with no lang string Moodle's message is 'error/<code>'."""
    return MoodleError("core\\exception\\moodle_exception", errorcode,
                       f"error/{errorcode}" if message is None else message, debuginfo)


def invalid_parameter(debuginfo: str) -> MoodleError:
    return MoodleError("core\\exception\\invalid_parameter_exception", "invalidparameter",
                       "Invalid parameter value detected", debuginfo)


def invalid_response(debuginfo: str) -> MoodleError:
    """clean_returnvalue() refusing the function's own answer (after the function has done its work)."""
    return MoodleError("core\\exception\\invalid_response_exception", "invalidresponse",
                       "Invalid response value detected", debuginfo)


def access_exception(debuginfo: str) -> MoodleError:
    return MoodleError("webservice_access_exception", "accessexception", "Access control exception", debuginfo)


def coding_exception(hint: str, debuginfo: str | None = None) -> MoodleError:
    return MoodleError("core\\exception\\coding_exception", "codingerror",
                       f"Coding error detected, it must be fixed by a programmer: {hint}", debuginfo)


class NotImplementedByStandIn(Exception):
    """A function listed in the token's service that the stand-in has no implementation for.

    Answered with HTTP 501 so a test fails loudly instead of seeing a made-up Moodle answer.
    """


# --------------------------------------------------------------------------- parameter descriptions

REQUIRED, DEFAULT, OPTIONAL = "required", "default", "optional"


@dataclass
class Value:
    """external_value: a scalar of a PARAM_* type ('int', 'bool', 'raw', 'username', ...)."""
    type: str
    required: str = REQUIRED
    default: Any = None


@dataclass
class Single:
    """external_single_structure: named keys; unknown keys are an error, as in Moodle."""
    keys: dict
    required: str = REQUIRED
    default: Any = None


@dataclass
class Multiple:
    """external_multiple_structure: a list (a PHP array, whatever its keys)."""
    content: Any
    required: str = REQUIRED
    default: Any = None


AUTH_PLUGINS = {"cas", "db", "email", "ldap", "lti", "manual", "mnet", "nologin", "none", "oauth2",
                "shibboleth", "webservice"}
THEMES = {"boost", "classic"}
LANGS = {"en"}
_TIMEZONE = re.compile(r"(([+-]?(0?[0-9](\.[5|0])?|1[0-3](\.0)?|1[0-2]\.5))|(99)|[A-Za-z0-9]+(/?[A-Za-z_-])+)")


def php_empty(value: Any) -> bool:
    """PHP's empty(): '0' is empty too, which several Moodle checks rely on."""
    return value in (None, "", "0", 0, False) or value == [] or value == {}


_SURROGATES = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (decoded with surrogateescape)
_PHP_TAG = re.compile(r"<(?!\s)[^>]*(>|$)")      # strip_tags(): '<' before white space is text, not a tag


def fix_utf8(text: str) -> str:
    """fix_utf8(), which clean_param() runs on every text: NUL bytes and invalid UTF-8 are removed.

    So a value holding either no longer equals what was sent, and the whole call is refused."""
    return _SURROGATES.sub("", text.replace("\0", ""))


def clean_param(text: str, ptype: str) -> Any:
    """clean_param() for the PARAM_* types the implemented functions use."""
    text = fix_utf8(text)
    if ptype == "int":
        match = re.match(r"\s*[+-]?\d+", text)
        return int(match.group()) if match else 0
    if ptype == "bool":
        low = text.lower()
        return 1 if low in ("on", "yes", "true") else 0 if low in ("off", "no", "false") else int(not php_empty(text))
    if ptype == "raw":
        return text
    if ptype == "raw_trimmed":
        return text.strip(" \t\n\r\0\x0b")
    if ptype in ("notags", "text"):
        return _PHP_TAG.sub("", text)
    if ptype == "alpha":
        return re.sub(r"[^a-zA-Z]", "", text)
    if ptype == "alphanum":
        return re.sub(r"[^a-zA-Z0-9]", "", text)
    if ptype in ("alphanumext", "safedir"):
        return re.sub(r"[^a-zA-Z0-9_-]", "", text)
    if ptype == "username":
        return re.sub(r"[^-.@_a-z0-9]", "", text.strip().lower().replace(" ", ""))
    if ptype == "plugin":
        return text if re.fullmatch(r"[a-z](?:[a-z0-9]|_(?!_))*[a-z0-9]", text) else ""
    if ptype == "auth":
        return text if text in AUTH_PLUGINS else ""
    if ptype == "lang":
        return text if text in LANGS else ""
    if ptype == "theme":
        return text if text in THEMES else ""
    if ptype == "timezone":
        return text if _TIMEZONE.fullmatch(text.strip()) else ""
    raise ValueError(f"unsupported PARAM type {ptype!r}")


def _validate_value(value: Any, ptype: str) -> Any:
    """validate_param(): the cleaned value must equal what was sent, or the whole call fails."""
    if ptype == "bool" and value in (True, False, 0, 1, "0", "1"):
        return bool(int(value))
    text = value if isinstance(value, str) else str(value)
    cleaned = clean_param(text, ptype)
    if str(cleaned) != text:
        raise invalid_parameter(f'Invalid external api parameter: the value is "{text}", '
                                f'the server was expecting "{ptype}" type')
    return cleaned


def checked_warnings(warnings: list[dict]) -> list[dict]:
    """clean_returnvalue() of external_warnings: a warningcode that is not PARAM_ALPHANUM (a password
    policy's HTML, say) makes the whole answer invalid_response_exception, whatever was already done."""
    for warning in warnings:
        code = str(warning["warningcode"])
        if clean_param(code, "alphanum") != code:
            raise invalid_response(f"warnings => Invalid response value detected: warningcode => Invalid response "
                                   f'value detected: Invalid external api response: the value is "{code}", '
                                   'the server was expecting "alphanum" type')
    return warnings


def per_item(site: MoodleStandIn, kind: str, items: list[dict], apply: Callable[[MoodleStandIn, dict], None]) -> dict:
    """Each item in its own transaction: a failure becomes a warning and the other items still apply."""
    warnings = []
    for item in items:
        try:
            apply(site, item)
        except MoodleError as exc:
            warnings.append({"item": kind, "itemid": item["id"], "warningcode": exc.errorcode,
                             "message": exc.text(site.debug)})
    return {"warnings": checked_warnings(warnings)}


def validate(desc: Value | Single | Multiple, params: Any) -> Any:
    """external_api::validate_parameters(): fill defaults, reject unknown keys, build the error path."""
    if isinstance(desc, Value):
        if isinstance(params, (dict, list)):
            raise invalid_parameter("Scalar type expected, array or object received.")
        return _validate_value(params, desc.type)
    if isinstance(desc, Single):
        if isinstance(params, list):
            params = {str(i): v for i, v in enumerate(params)}
        if not isinstance(params, dict):
            raise invalid_parameter(f"Only arrays accepted. The bad value is: '{params}'")
        params, result = dict(params), {}
        for key, sub in desc.keys.items():
            if key not in params:
                if sub.required == REQUIRED:
                    raise invalid_parameter(f"Missing required key in single structure: {key}")
                if sub.required == DEFAULT:
                    result[key] = copy.deepcopy(sub.default)
                continue
            try:
                result[key] = validate(sub, params.pop(key))
            except MoodleError as exc:
                raise invalid_parameter(f"{key} => {exc.message}: {exc.debuginfo}") from None
        if params:
            raise invalid_parameter(f"Unexpected keys ({', '.join(params)}) detected in parameter array.")
        return result
    if isinstance(params, dict):
        params = list(params.values())
    if not isinstance(params, list):
        raise invalid_parameter(f"Only arrays accepted. The bad value is: '{params}'")
    return [validate(desc.content, item) for item in params]


# --------------------------------------------------------------------------- function registry


@dataclass
class WsFunction:
    name: str
    params: Single
    handler: Callable[..., Any]
    writes: bool


FUNCTIONS: dict[str, WsFunction] = {}


def ws_function(name: str, params: dict, *, writes: bool = False):
    """Register ``handler(site, **validated_params)`` as Moodle function ``name``.

    ``writes=True`` makes the stand-in save its state file after every call, failed ones included
    (a rolled-back create still uses up user ids, as a database sequence does).
    """
    def register(handler):
        if name in FUNCTIONS:  # two modules answering one function: the one imported last would win unseen
            raise ValueError(f"{name} is registered twice ({FUNCTIONS[name].handler.__module__}, {handler.__module__})")
        FUNCTIONS[name] = WsFunction(name, Single(params), handler, writes)
        return handler
    return register


@ws_function("core_webservice_get_site_info",
             {"serviceshortnames": Multiple(Value("alphanumext"), DEFAULT, [])})
def get_site_info(site: MoodleStandIn, serviceshortnames: list) -> dict:
    """core_webservice_external::get_site_info (keys in 4.5 order); the quota and upload limits are a site
    admin's unless the token belongs to another user (see MoodleStandIn.set_token_user)."""
    user = site.users[site.token_user_id]
    admin = site.token_user_id == ADMIN_ID
    features = {"usecomments": 1, "usetags": 1, "enablenotes": 1, "messaging": 1, "enableblogs": 1,
                "enablecompletion": 1, "enablebadges": 1, "messagingallusers": 0, "enablecustomreports": 1,
                "enableglobalsearch": 0, "mnet_dispatcher_mode": 0, "enablecompetencies": 1}
    return {
        "sitename": SITE_NAME, "username": user["username"], "firstname": user["firstname"],
        "lastname": user["lastname"], "fullname": f"{user['firstname']} {user['lastname']}", "lang": "en",
        "userid": user["id"], "siteurl": site.base_url, "userpictureurl": site.picture_url("f1"),
        "functions": [{"name": name, "version": VERSION if name.startswith("core_") else PLUGIN_VERSION}
                      for name in site.functions],
        "downloadfiles": 0, "uploadfiles": 0, "release": RELEASE, "version": VERSION, "mobilecssurl": "",
        "advancedfeatures": [{"name": k, "value": v} for k, v in features.items()],
        "usercanmanageownfiles": True, "userquota": 0 if admin else 104857600,
        "usermaxuploadfilesize": -1 if admin else 2097152, "userhomepage": 1,
        "userprivateaccesskey": site.private_access_key, "siteid": 1, "sitecalendartype": "gregorian",
        "usercalendartype": "gregorian", "userissiteadmin": admin, "theme": "boost",
        "limitconcurrentlogins": 0, "policyagreed": 0,
    }


# --------------------------------------------------------------------------- wire formats

_BRACKET = re.compile(r"\[([^\]]*)\]")


def decode_form(pairs: Iterable[tuple[str, str]], max_vars: int = MAX_INPUT_VARS) -> dict:
    """Rebuild PHP's $_POST from ``users[0][customfields][0][type]=gender``-style pairs.

    Like PHP: ``a[]`` appends, a later duplicate wins, pairs past max_input_vars are dropped, and
    arrays keyed 0..n are returned as Python lists (in the order sent, as PHP keeps it).
    """
    root: dict = {}
    for count, (name, value) in enumerate(pairs):
        if count >= max_vars:
            break
        base, bracket, rest = name.partition("[")
        keys = [base] + (_BRACKET.findall("[" + rest) if bracket else [])
        node = root
        for i, key in enumerate(keys):
            if key == "" and i > 0:
                key = str(max((int(k) + 1 for k in node if k.isdigit()), default=0))
            if i == len(keys) - 1:
                node[key] = value
                break
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    node = {k: _listify(v) for k, v in node.items()}
    if node and all(k.isdigit() and str(int(k)) == k for k in node):
        return list(node.values())
    return node


def json_number(value: float | None) -> int | float | None:
    """How Moodle's answers carry decimals from the database: whole numbers as JSON ints (70, 100, 0),
    others as floats (72.5)."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else float(value)


def php_json(value: Any) -> bytes:
    """json_encode() output: compact, ASCII-only, slashes escaped."""
    return json.dumps(value, separators=(",", ":")).replace("/", "\\/").encode()


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _xml_value(value: Any) -> str:
    if isinstance(value, dict):
        keys = "".join(f'<KEY name="{k}">{_xml_value(v)}</KEY>\n' for k, v in value.items())
        return f"<SINGLE>\n{keys}</SINGLE>\n"
    if isinstance(value, list):
        return "<MULTIPLE>\n" + "".join(_xml_value(v) for v in value) + "</MULTIPLE>\n"
    if value is None:
        return '<VALUE null="null"/>\n'
    return f"<VALUE>{_xml_escape(str(int(value) if isinstance(value, bool) else value))}</VALUE>\n"


def xml_response(value: Any) -> bytes:
    """Moodle's default format when moodlewsrestformat is not 'json'."""
    return f'<?xml version="1.0" encoding="UTF-8" ?>\n<RESPONSE>\n{_xml_value(value)}</RESPONSE>\n'.encode(
        "utf-8", "replace")


def xml_error(error: dict) -> bytes:
    parts = [f'<EXCEPTION class="{_xml_escape(error["exception"])}">']
    parts += [f"<{tag.upper()}>{_xml_escape(error[tag])}</{tag.upper()}>"
              for tag in ("errorcode", "message", "debuginfo") if tag in error]
    return ('<?xml version="1.0" encoding="UTF-8" ?>\n' + "\n".join(parts) + "\n</EXCEPTION>\n").encode(
        "utf-8", "replace")


def _html_page(status: int) -> bytes:
    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        title = f"{status} Error"
    return f"<!DOCTYPE html>\n<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>\n".encode()


# --------------------------------------------------------------------------- the site


class MoodleStandIn:
    """A Moodle 4.5 site reduced to its REST web services, served on localhost from memory.

    Tests read ``users``/``calls``/``server_log`` directly and set the site up with these controls::

        fail_next_requests(count, status=503) ; delay_next_requests(count, seconds)   # faults
        web_services_enabled: bool = True  # False: HTTP 403, empty body
        maintenance: str | None = None     # "admin": the sitemaintenance error object (HTTP 200) for the
                                           # token user; "cli": HTTP 503 + cli_maintenance_page, every request
        expired_token: bool = False ; debug: bool = False ; allow_accounts_same_email: bool = False
        database_refuses_writes: bool = False  # every INSERT/UPDATE fails (a full disk, a read-only database):
                                           # create_users, create_courses, enrol answer dml_write_exception,
                                           # update_users/update_courses a dmlwriteexception warning per item
        max_input_vars: int = 5000         # PHP cuts the tail of a bigger request, HTTP 200, server_log warns
        add_user(**mdl_user_fields) -> dict ; set_token_user(userid)   # default token user: the admin

    Courses, enrolments, grades and completions (all kept in the state file too)::

        course_custom_fields: list[dict]   # definitions, in display order: shortname, name, type
                                           # ("text", "textarea", "select", "checkbox", "date", "number"),
                                           # options (select: the option texts; Moodle stores the 1-based
                                           # index), optional defaultvalue, checkbydefault, includetime,
                                           # decimalplaces, visibility (2 everyone, 1 teachers, 0 nobody -
                                           # not even an admin sees it)
        signup_enabled: bool = True        # False: auth_email_get_signup_settings -> registrationdisabled
        add_category(name, *, parent=0, idnumber="") -> dict
        add_course(shortname, fullname=None, *, categoryid, idnumber="", visible=1, startdate=0,
                   enablecompletion=1, has_completion_criteria=True,
                   customfields: dict[str, str] | None = None, **more_mdl_course_fields) -> dict
            # customfields by shortname with the DISPLAY value: select option text (unknown text
            # stores 0 = no value), checkbox "1"/"0", date int timestamp, number "70" ("" = none),
            # text/textarea string
        update_course(courseid, **fields)  # mdl_course fields, categoryid, customfields (merged)
        reorder_courses(courseids)         # mdl_course's physical row order, which get_courses answers in
        delete_course(courseid)            # its enrolments, grades and completions go with it
        enrol(userid, courseid, role="student", *, suspended=False, timestart=0, timeend=0) ; unenrol(userid, courseid)
        set_manual_enrolment(courseid, "enabled" | "disabled" | "absent") ; delete_user(userid)
        add_grade_item(courseid, itemname, *, grademax=100.0) -> dict   # a manual grade item
        set_grade(courseid, userid, grade: float | None, *, grademax=100.0, dategraded: int | None = None,
                  item: str | None = None, override=False)
            # a grade item's grade (the total sums them) or the teacher's override of the course total;
            # dategraded defaults to now, so every change moves gradedategraded
        complete(courseid, userid, *, timecompleted: int | None)  # None removes the completion
        touch(userid, when: int)           # user lastaccess (firstaccess if unset) and the course
                                           # lastaccess of every course the user is enrolled in

    The site starts with the site course (id 1) and the category "Category 1" (id 1). The state is
    plain data on the object (``courses``, ``course_rows``, ``categories``, ``enrolments``, ``grade_items``,
    ``grades``, ``completions``, ``course_access``): read it freely, change it only through these methods.
    """

    def __init__(self, token: str, *, functions: Iterable[str] | None = None, state_path: Path | None = None,
                 host: str = "127.0.0.1", port: int = 0, allow_accounts_same_email: bool = False):
        from .courses import seed_course_state  # the function modules import this module
        from .users import DEFAULT_PROFILE_FIELDS, seed_users

        self.token = token
        self._functions = None if functions is None else list(functions)
        self.state_path = Path(state_path) if state_path else None
        self.host, self.port = host, port
        self.allow_accounts_same_email = allow_accounts_same_email
        self.web_services_enabled = True
        self.maintenance: str | None = None  # "admin" (Site administration) or "cli" (upgrades); see set-up doc
        self.cli_maintenance_page = CLI_MAINTENANCE_PAGE
        self.server_log: list[str] = []      # what PHP would write to the web server's error log
        self.expired_token = False
        self.token_deleted = False  # Moodle deletes an expired token the first time it sees it.
        self.debug = False          # True = DEBUG_DEVELOPER with debugdisplay: debuginfo reaches clients.
        self.database_refuses_writes = False
        self.max_input_vars = MAX_INPUT_VARS
        self.token_user_id = ADMIN_ID
        self.private_access_key = secrets.token_hex(16)
        self.profile_fields: list[dict] = copy.deepcopy(DEFAULT_PROFILE_FIELDS)
        for field in self.profile_fields:  # "Display on signup page", so signup settings list them
            field.setdefault("signup", 1)
        self.users: dict[int, dict] = seed_users()
        self.next_id = max(self.users) + 1
        seed_course_state(self)
        self.calls: list[tuple[str, dict]] = []
        self._lock = threading.RLock()
        self._fail = [0, 503]
        self._delay = [0, 0.0]
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._load()

    # -- lifecycle

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def functions(self) -> list[str]:
        """The functions in the token's service (every implemented one unless restricted)."""
        return list(FUNCTIONS) if self._functions is None else list(self._functions)

    def start(self) -> MoodleStandIn:
        self._httpd = _Server((self.host, self.port), _Handler)
        self._httpd.site = self  # type: ignore[attr-defined]
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),  # quick stop()
                                        name="moodle-stand-in", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.stopped = True  # kept-alive connections must not keep answering
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
            self._httpd = self._thread = None

    def __enter__(self) -> MoodleStandIn:
        return self if self._httpd else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- test helpers

    def add_user(self, **fields) -> dict:
        """Seed a user that already exists in Moodle (bypasses validation, like an admin's manual entry)."""
        from .users import new_record
        with self._lock:
            record = new_record(self, fields)
            self.users[record["id"]] = record
            self.next_id = max(self.next_id, record["id"] + 1)
            self._save()
            return copy.deepcopy(record)

    def add_category(self, name: str, *, parent: int = 0, idnumber: str = "") -> dict:
        """A course category made by an admin (appended after its siblings)."""
        from . import courses
        with self._lock:
            record = courses.add_category(self, name, parent, idnumber)
            self._save()
            return copy.deepcopy(record)

    def add_course(self, shortname: str, fullname: str | None = None, *, categoryid: int, idnumber: str = "",
                   visible: int = 1, startdate: int = 0, enablecompletion: int = 1,
                   has_completion_criteria: bool = True, customfields: dict | None = None, **fields) -> dict:
        """A course made by an admin; ``customfields`` by shortname with display values (see class doc)."""
        from . import courses
        with self._lock:
            record = courses.add_course(self, shortname, fullname, categoryid, idnumber=idnumber, visible=visible,
                                        startdate=startdate, enablecompletion=enablecompletion,
                                        has_completion_criteria=has_completion_criteria, customfields=customfields,
                                        **fields)
            self._save()
            return copy.deepcopy(record)

    def update_course(self, courseid: int, **fields) -> dict:
        from . import courses
        with self._lock:
            record = courses.update_course(self, courseid, fields)
            self._save()
            return copy.deepcopy(record)

    def reorder_courses(self, courseids: list[int]) -> None:
        """Set the physical order of mdl_course rows (core_course_get_courses answers in it); these ids first,
        the others after in their order. New courses are appended and update_course moves a row last."""
        from . import courses
        with self._lock:
            courses.reorder_courses(self, courseids)
            self._save()

    def delete_course(self, courseid: int) -> None:
        from . import courses
        with self._lock:
            courses.delete_course(self, courseid)
            self._save()

    def enrol(self, userid: int, courseid: int, role: str = "student", *, suspended: bool = False,
              timestart: int = 0, timeend: int = 0) -> None:
        """A manual enrolment with one role; enrolling again changes the role or status. Past ``timeend`` (and
        before ``timestart``) the enrolment counts as suspended."""
        from . import courses, provisioning
        with self._lock:
            provisioning.set_enrolment_dates(courses.enrol(self, userid, courseid, role, suspended), timestart, timeend)
            self._save()

    def set_manual_enrolment(self, courseid: int, status: str) -> None:
        """The course's manual enrolment method as an administrator left it: "enabled", "disabled" or "absent"."""
        from . import provisioning
        with self._lock:
            provisioning.set_manual_enrolment(self, courseid, status)
            self._save()

    def delete_user(self, userid: int) -> None:
        """An administrator deletes the account (its enrolments, roles, grades and completions go with it)."""
        from . import provisioning
        with self._lock:
            provisioning.delete_user(self, userid)
            self._save()

    def unenrol(self, userid: int, courseid: int) -> None:
        from . import courses
        with self._lock:
            courses.unenrol(self, userid, courseid)
            self._save()

    def add_grade_item(self, courseid: int, itemname: str, *, grademax: float = 100.0) -> dict:
        """A manual grade item of the course (range 0-grademax), listed before the course total."""
        from . import grades
        with self._lock:
            item = grades.add_grade_item(self, courseid, itemname, grademax)
            self._save()
            return copy.deepcopy(item)

    def set_grade(self, courseid: int, userid: int, grade: float | None, *, grademax: float = 100.0,
                  dategraded: int | None = None, item: str | None = None, override: bool = False,
                  before_first_regrade: bool = False) -> None:
        """The user's grade (None: none) in grade item ``item`` (default the course's first, made as the manual
        item "Final assessment" if it has none), whose range becomes 0-grademax; the course total sums them.
        ``override=True``: a teacher's override of the course total instead, kept within the total's range
        (0-0 in a course without grade items, so it is stored as 0); with ``before_first_regrade`` (made through
        the grade API before the course was first regraded) within 0-grademax, kept by later regrades.
        dategraded defaults to now."""
        from . import grades
        with self._lock:
            grades.set_grade(self, courseid, userid, grade, grademax, dategraded, item, override, before_first_regrade)
            self._save()

    def complete(self, courseid: int, userid: int, *, timecompleted: int | None) -> None:
        """Mark the course complete for the user at ``timecompleted`` (None: not complete)."""
        from . import grades
        with self._lock:
            grades.complete(self, courseid, userid, timecompleted)
            self._save()

    def touch(self, userid: int, when: int) -> None:
        """The user was on the site at ``when``: moves lastaccess and every enrolled course's lastaccess."""
        from . import courses
        with self._lock:
            courses.touch(self, userid, when)
            self._save()

    def set_token_user(self, userid: int) -> None:
        """The token belongs to this user (default: the admin), as the integration's dedicated web-service
        user on a real site: its own record carries ``preferences``, and site info shows a non-admin's limits."""
        with self._lock:
            if userid not in self.users or userid == GUEST_ID:
                raise ValueError(f"no user {userid} that can own a token")
            self.token_user_id = userid

    def fail_next_requests(self, count: int, status: int = 503) -> None:
        """The next ``count`` HTTP requests get ``status`` from 'the proxy': Moodle never sees them."""
        with self._lock:
            self._fail = [count, status]

    def delay_next_requests(self, count: int, seconds: float) -> None:
        """The next ``count`` requests are processed at once but answered ``seconds`` late.

        So a client that times out has still changed Moodle's state, as with a slow real site.
        """
        with self._lock:
            self._delay = [count, seconds]

    def allocate_id(self) -> int:
        """Next user id; never reused, even when the transaction that took it rolls back."""
        self.next_id += 1
        return self.next_id - 1

    def picture_url(self, size: str) -> str:
        return f"{self.base_url}/theme/image.php/boost/core/1/u/{size}"

    # -- persistence

    def _load(self) -> None:
        from .courses import load_course_state
        from .reportbuilder import load_report_state
        if self.state_path and self.state_path.exists():
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            self.users = {int(uid): record for uid, record in state["users"].items()}
            self.next_id = state["next_id"]
            load_course_state(self, state)
            load_report_state(self, state.get("reportbuilder"))

    def save(self) -> None:
        """Write the state file now: for a function that stores something without being a write (a user's
        report filters, a preference sent again stores the same)."""
        with self._lock:
            self._save()

    def _save(self) -> None:
        """Atomic replace, so a killed stand-in never leaves half a state file."""
        if not self.state_path:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        from .courses import dump_course_state
        from .reportbuilder import dump_report_state
        state = {"next_id": self.next_id, "users": {str(uid): u for uid, u in self.users.items()},
                 **dump_course_state(self), "reportbuilder": dump_report_state(self)}
        fd, tmp = tempfile.mkstemp(dir=self.state_path.parent, prefix=self.state_path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=1)
        os.replace(tmp, self.state_path)

    # -- request handling

    def _take_faults(self) -> tuple[int | None, float]:
        with self._lock:
            status = delay = None
            if self._fail[0] > 0:
                self._fail[0] -= 1
                status = self._fail[1]
            if self._delay[0] > 0:
                self._delay[0] -= 1
                delay = self._delay[1]
            return status, delay or 0.0

    def _decode(self, encoded: str, *, post: bool) -> dict:
        """One of PHP's input arrays ($_GET or $_POST), each cut at max_input_vars with only a log line.

        php_std_post_handler registers a body variable before it counts it, so $_POST keeps one more
        (5,001 of 5,043 on the recorded site: its 625th user lost only its last two fields)."""
        pairs = parse_qsl(encoded, keep_blank_values=True, errors="surrogateescape")
        if len(pairs) > self.max_input_vars:
            self.server_log.append(f"PHP Warning:  Unknown: Input variables exceeded {self.max_input_vars}. "
                                   "To increase the limit change max_input_vars in php.ini. in Unknown on line 0")
        return decode_form(pairs, self.max_input_vars + 1 if post else self.max_input_vars)

    def handle_http(self, raw_path: str, body: bytes) -> tuple[int, str, bytes, float]:
        """One HTTP exchange -> (status, content type, body, seconds to wait before answering)."""
        status, delay = self._take_faults()
        if status:
            return status, "text/html; charset=utf-8", _html_page(status), delay
        if self.maintenance == "cli":  # lib/setup.php sends climaintenance.html before anything else runs
            return 503, "text/html; charset=utf-8", self.cli_maintenance_page.encode(), delay
        url = urlsplit(raw_path)
        if url.path != REST_PATH:
            return 404, "text/html; charset=utf-8", _html_page(404), delay
        if not self.web_services_enabled:  # rest/server.php: header 403 and die, nothing else.
            return 403, "text/html; charset=UTF-8", b"", delay
        variables = self._decode(url.query, post=False)
        variables.update(self._decode(body.decode("utf-8", "surrogateescape"), post=True))
        as_json = variables.get("moodlewsrestformat") == "json"
        try:
            result = self._call(variables)
            payload = php_json(result) if as_json else xml_response(result)
        except MoodleError as exc:
            error = exc.to_dict(self.debug)
            payload = php_json(error) if as_json else xml_error(error)
        except NotImplementedByStandIn as exc:
            return 501, "text/plain; charset=utf-8", str(exc).encode(), delay
        return 200, "application/json" if as_json else "application/xml; charset=utf-8", payload, delay

    def _call(self, variables: dict) -> Any:
        """webservice_base_server::run(): parse, authenticate, load function, validate, execute."""
        token = variables.pop("wstoken", None)
        name = variables.pop("wsfunction", None)
        for key in [k for k in variables if k == "moodlewsrestformat" or k.startswith("moodlewssetting")]:
            del variables[key]
        with self._lock:
            if name is not None:
                self.calls.append((name, copy.deepcopy(variables)))
            if not isinstance(token, str) or token != self.token or self.token_deleted:
                raise moodle_exception("invalidtoken", "Invalid token - token not found")
            if self.expired_token:
                self.token_deleted = True
                raise access_exception("Invalid token - token expired - check validuntil time for the token")
            if self.maintenance == "admin":  # the token user lacks moodle/site:maintenanceaccess
                raise moodle_exception("sitemaintenance",
                                       "The site is undergoing maintenance and is currently not available")
            if not name:
                raise invalid_parameter("Missing function name")
            function = FUNCTIONS.get(name)
            if function is None and name not in self.functions:
                raise MoodleError("dml_missing_record_exception", "invalidrecord",
                                  "Can't find data record in database table external_functions.")
            if name not in self.functions:
                raise access_exception(f"Access to the function {name}() is not allowed.")
            if function is None:
                raise NotImplementedByStandIn(f"moodle_stand_in does not implement {name}")
            params = validate(function.params, variables)
            try:
                return function.handler(self, **params)
            finally:
                if function.writes:
                    self._save()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stopped = False
    request_queue_size = 128  # the default backlog of 5 resets parallel clients' connections


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # TCP_NODELAY: small answers are not held back ~40 ms by Nagle's algorithm
    protocol_version = "HTTP/1.1"
    server_version = "Apache"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - silent: a GET URL would carry the token
        pass

    def do_GET(self):
        self._answer(b"")

    def do_POST(self):
        self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _answer(self, body: bytes) -> None:
        if self.server.stopped:  # a client reusing a connection to a stopped site: drop it unanswered
            self.close_connection = True
            return
        status, content_type, payload, delay = self.server.site.handle_http(self.path, body)
        if delay:
            time.sleep(delay)
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "private, must-revalidate, pre-check=0, post-check=0, max-age=0")
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout); Moodle carries on regardless
