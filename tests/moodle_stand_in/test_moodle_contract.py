"""Replays Moodle request/response recordings against a fresh stand-in and compares the answers.

Each request goes over HTTP the way a real client sends it: a form-encoded POST with the token in
the body and nested parameters as PHP arrays (``users[0][customfields][0][type]=gender``).

Comparison: same HTTP status; for JSON bodies the same keys at every level and the same JSON types;
error objects must match exception/errorcode/message exactly. For our own recordings
(tests/moodle_stand_in/contract/recordings) every other scalar must match too, except volatile ones (ids, times,
URLs, keys) which are compared by type. Recordings from the live site (../shared/moodle-contract) come
from a site whose ids and times differ, so for those only the shape and the error objects are compared.

A live recording's ``setup`` names only what the stand-in could express when it was made; what its
``description`` adds (maintenance mode, a manual grade item, a teacher's override, the token's user)
is in contract/shared_setup.json, merged into that setup. The merge may only add, never change what
the recording says. The school-provisioning recordings (../shared/moodle-contract-school) are replayed
the same way, on a site numbered as theirs was (contract/school_setup.json: its ``baseline``), with
their own supplements; so are the ESS recordings (../shared/moodle-contract-ess, contract/ess_setup.json),
whose top-level ``activities`` are part of their set-up.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from moodle_provider.form_encoding import flatten_params
from moodle_stand_in import MoodleStandIn
from moodle_stand_in.ess import add_activity, set_enrol_method, start_ids

REPO_ROOT = Path(__file__).resolve().parents[2]
OWN_DIR = Path(__file__).resolve().parent / "contract" / "recordings"
SHARED_DIR = REPO_ROOT.parent / "shared" / "moodle-contract"
SHARED_SETUP = Path(__file__).resolve().parent / "contract" / "shared_setup.json"
SCHOOL_DIR = REPO_ROOT.parent / "shared" / "moodle-contract-school"
SCHOOL_SETUP = Path(__file__).resolve().parent / "contract" / "school_setup.json"
ESS_DIR = REPO_ROOT.parent / "shared" / "moodle-contract-ess"
ESS_SETUP = Path(__file__).resolve().parent / "contract" / "ess_setup.json"
# Live pairs of ../shared/moodle-lab-findings (where the stand-in once differed from a live site), converted to
# the recordings format; what the stand-in cannot express of their set-up is said in each one's description.
LAB_DIR = Path(__file__).resolve().parent / "contract" / "lab_findings"
TOKEN = "0123456789abcdef0123456789abcdef"
VOLATILE = {"id", "userid", "itemid", "siteid", "siteurl", "userpictureurl", "profileimageurl",
            "profileimageurlsmall", "userprivateaccesskey", "firstaccess", "lastaccess", "timecreated",
            "timemodified", "_lastloaded", "courseimage", "gradedatesubmitted"}
PLACEHOLDERS = {"$id:": "id", "$course:": "course", "$category:": "category"}
ERROR_KEYS = ("exception", "errorcode", "message")


def post(base_url: str, pairs: list[tuple[str, str]]) -> tuple[int, str]:
    request = urllib.request.Request(f"{base_url}/webservice/rest/server.php",
                                     data=urllib.parse.urlencode(pairs).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def json_type(value) -> str:
    for python_type, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "string"),
                              (list, "list"), (dict, "object"), (type(None), "null")):
        if isinstance(value, python_type):
            return name
    raise TypeError(value)


def compare(expected, actual, *, exact: bool, path: str = "body", key: str = "") -> list[str]:
    """Differences between two JSON values, as readable 'path: problem' lines."""
    if json_type(expected) != json_type(actual):
        return [f"{path}: expected {json_type(expected)} {expected!r}, got {json_type(actual)} {actual!r}"]
    if isinstance(expected, dict):
        problems = []
        if set(expected) != set(actual):
            problems.append(f"{path}: keys differ, missing {sorted(set(expected) - set(actual))}, "
                            f"extra {sorted(set(actual) - set(expected))}")
        is_error = "exception" in expected
        for name in set(expected) & set(actual):
            if is_error and name in ERROR_KEYS and expected[name] != actual[name]:
                problems.append(f"{path}.{name}: expected {expected[name]!r}, got {actual[name]!r}")
            else:
                problems += compare(expected[name], actual[name], exact=exact, path=f"{path}.{name}", key=name)
        return problems
    if isinstance(expected, list):
        if len(expected) != len(actual):
            return [f"{path}: expected {len(expected)} items, got {len(actual)}"]
        return [p for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for p in compare(e, a, exact=exact, path=f"{path}[{i}]", key=key)]
    if exact and key not in VOLATILE and expected != actual:
        return [f"{path}: expected {expected!r}, got {actual!r}"]
    return []


def resolve(value, refs: dict[str, dict[str, int]]):
    """'$id:jdoe', '$course:DRV101' and '$category:Driver Training' in a recording's setup and params
    mean the id that setup user, course (by shortname) or category (by name) got."""
    if isinstance(value, dict):
        return {k: resolve(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    if isinstance(value, str):
        for prefix, kind in PLACEHOLDERS.items():
            if value.startswith(prefix):
                return refs[kind][value[len(prefix):]]
    return value


def build_site(setup: dict, baseline: dict | None = None) -> tuple[MoodleStandIn, dict[str, dict[str, int]]]:
    """A fresh stand-in with the recording's setup applied, in order: users, the token's user, categories,
    courses (in the order listed, which is their physical order), activities, grade items, enrolments, manual
    and other enrolment methods, grades, completions, access times (MoodleStandIn.touch), deleted users, then the
    site switches. ``baseline`` (users, token_user, first_ids, course_custom_fields) is what the recorded site
    held before the setup."""
    site = MoodleStandIn(TOKEN, functions=setup.get("functions"),
                         allow_accounts_same_email=setup.get("allow_accounts_same_email", False))
    refs: dict[str, dict[str, int]] = {"id": {}, "course": {}, "category": {}}
    if baseline:
        setup = {**setup, "users": baseline["users"] + setup.get("users", []),
                 "token_user": setup.get("token_user", baseline["token_user"])}
        start_ids(site, **baseline["first_ids"])
        site.course_custom_fields += baseline.get("course_custom_fields", [])
    for user in setup.get("users", []):
        refs["id"][user["username"]] = site.add_user(**user)["id"]
    if "token_user" in setup:
        site.set_token_user(refs["id"][setup["token_user"]])
    for category in setup.get("categories", []):
        category = resolve(category, refs)  # one at a time: a parent is an earlier category
        name = category.pop("name")
        refs["category"][name] = site.add_category(name, **category)["id"]
    for course in setup.get("courses", []):
        course = resolve(course, refs)
        shortname = course.pop("shortname")
        refs["course"][shortname] = site.add_course(shortname, **course)["id"]
    for activity in resolve(setup.get("activities", []), refs):
        add_activity(site, activity.pop("course"), activity.pop("modname"), activity.pop("name"), **activity)
    for item in resolve(setup.get("grade_items", []), refs):
        site.add_grade_item(**item)
    for enrolment in resolve(setup.get("enrolments", []), refs):
        site.enrol(**enrolment)
    for method in resolve(setup.get("manual_enrolment", []), refs):
        site.set_manual_enrolment(**method)
    for method in resolve(setup.get("enrol_methods", []), refs):
        set_enrol_method(site, **method)
    for grade in resolve(setup.get("grades", []), refs):
        site.set_grade(**grade)
    for completion in resolve(setup.get("completions", []), refs):
        site.complete(**completion)
    for access in resolve(setup.get("access", []), refs):
        site.touch(**access)
    for userid in resolve(setup.get("deleted_users", []), refs):
        site.delete_user(userid)
    site.web_services_enabled = setup.get("web_services_enabled", True)
    site.maintenance = setup.get("maintenance")
    site.cli_maintenance_page = setup.get("cli_maintenance_page", site.cli_maintenance_page)
    site.expired_token = setup.get("expired_token", False)
    site.signup_enabled = setup.get("signup_enabled", True)
    return site, refs


def with_supplement(setup, extra, path: str = "setup"):
    """``setup`` with ``extra`` merged in: objects key by key, lists item by item (extra items appended).
    Refuses to change a value the recording already has, so a supplement can only add what the
    recording's description states."""
    if extra is None:
        return setup
    if isinstance(setup, dict) and isinstance(extra, dict):
        return {**setup, **{k: with_supplement(setup[k], v, f"{path}.{k}") if k in setup else v
                            for k, v in extra.items()}}
    if isinstance(setup, list) and isinstance(extra, list):
        merged = [with_supplement(a, b, f"{path}[{i}]") for i, (a, b) in enumerate(zip(setup, extra, strict=False))]
        return merged + setup[len(extra):] + extra[len(setup):]
    assert setup == extra, f"{path}: the supplement would change {setup!r} to {extra!r}"
    return setup


def replay(recording: dict, *, exact: bool, baseline: dict | None = None) -> None:
    site, refs = build_site(recording.get("setup") or {}, baseline)
    request = recording["request"]
    pairs = [("wstoken", request.get("wstoken", TOKEN)), ("wsfunction", request["wsfunction"]),
             ("moodlewsrestformat", "json")] + flatten_params(resolve(request.get("params", {}), refs))
    with site:
        status, text = post(site.base_url, pairs)
    expected = recording["response"]
    assert status == expected["status"], f"HTTP status {status}, expected {expected['status']}: {text[:300]}"
    if isinstance(expected["body"], str):
        assert text == expected["body"]
        return
    problems = compare(expected["body"], json.loads(text), exact=exact)
    assert not problems, "\n".join(problems)


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _supplements(path: Path = SHARED_SETUP) -> dict[str, dict]:
    return _load(path)["recordings"]


@pytest.mark.parametrize("path", sorted(OWN_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_own_recording(path: Path) -> None:
    recording = _load(path)
    assert {"description", "source", "request", "response"} <= set(recording), "incomplete recording"
    replay(recording, exact=True)


def _shared_params(folder: Path = SHARED_DIR):
    if not folder.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(
            reason=f"{folder} is absent: no recordings from a real Moodle 4.5 site on this machine"))]
    files = sorted(folder.rglob("*.json"))
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{folder} holds no *.json recordings"))]
    return [pytest.param(p, id=str(p.relative_to(folder))) for p in files]


def replay_live(path: Path, folder: Path, supplements: Path | None, baseline: dict | None = None) -> None:
    recording = _load(path)
    assert {"request", "response"} <= set(recording) and "wsfunction" in recording["request"], \
        f"{path.name} is not a request/response pair in the recordings format"
    supplement = _supplements(supplements).get(str(path.relative_to(folder)), {}) if supplements else {}
    setup = {**(recording.get("setup") or {}), **({"activities": recording["activities"]} if "activities" in recording
                                                  else {})}
    replay({**recording, "setup": with_supplement(setup, supplement.get("setup"))}, exact=False, baseline=baseline)


@pytest.mark.parametrize("path", _shared_params())
def test_shared_recording(path: Path) -> None:
    replay_live(path, SHARED_DIR, SHARED_SETUP)


@pytest.mark.parametrize("path", _shared_params(SCHOOL_DIR))
def test_school_recording(path: Path) -> None:
    replay_live(path, SCHOOL_DIR, SCHOOL_SETUP, _load(SCHOOL_SETUP)["baseline"])


@pytest.mark.parametrize("path", _shared_params(ESS_DIR))
def test_ess_recording(path: Path) -> None:
    replay_live(path, ESS_DIR, ESS_SETUP, _load(ESS_SETUP)["baseline"])


@pytest.mark.parametrize("path", _shared_params(LAB_DIR))
def test_lab_finding_recording(path: Path) -> None:
    replay_live(path, LAB_DIR, None)


@pytest.mark.parametrize(("folder", "supplements"), [(SHARED_DIR, SHARED_SETUP), (SCHOOL_DIR, SCHOOL_SETUP),
                                                     (ESS_DIR, ESS_SETUP)])
def test_shared_setup_supplements_name_live_recordings(folder: Path, supplements: Path) -> None:
    """Every supplement says which part of its recording's description it expresses, and the recording exists
    wherever the live recordings are present."""
    for name, supplement in _supplements(supplements).items():
        assert supplement["description_says"] and supplement["setup"], name
        if folder.is_dir():
            assert supplement["description_says"] in _load(folder / name)["description"], name


def test_supplements_only_add() -> None:
    setup = {"users": [{"username": "a"}], "grades": [{"grade": 72.5}]}
    merged = with_supplement(setup, {"grades": [{"override": True}], "maintenance": "admin"})
    assert merged == {"users": [{"username": "a"}], "grades": [{"grade": 72.5, "override": True}],
                      "maintenance": "admin"}
    with pytest.raises(AssertionError, match="would change"):
        with_supplement(setup, {"grades": [{"grade": 80}]})


def test_compare_catches_shape_changes() -> None:
    """The comparison itself: a bool that became an int, a missing key, a changed error message."""
    assert compare({"suspended": False}, {"suspended": 0}, exact=False)
    assert compare({"a": 1, "b": 2}, {"a": 1}, exact=False)
    assert compare({"exception": "x", "errorcode": "y", "message": "m"},
                   {"exception": "x", "errorcode": "y", "message": "other"}, exact=False)
    assert not compare({"id": 3, "name": "x"}, {"id": 7, "name": "y"}, exact=False)
    assert compare({"id": 3, "name": "x"}, {"id": 7, "name": "y"}, exact=True) == ["body.name: expected 'x', got 'y'"]
