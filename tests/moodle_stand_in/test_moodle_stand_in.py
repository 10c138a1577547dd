"""Behaviour of the Moodle stand-in beyond single request/response shapes: state, faults, threads, CLI."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from moodle_stand_in import MoodleStandIn
from moodle_stand_in.server import decode_form

TOKEN = "f00dfeedf00dfeedf00dfeedf00dfeed"
REPO_ROOT = Path(__file__).resolve().parents[2]


def form(params, prefix: str = "") -> list[tuple[str, str]]:
    pairs = []
    for key, value in (enumerate(params) if isinstance(params, list) else params.items()):
        name = f"{prefix}[{key}]" if prefix else str(key)
        pairs += form(value, name) if isinstance(value, (dict, list)) else [(name, str(value))]
    return pairs


def call(site: MoodleStandIn, function: str, params: dict | None = None, *, token: str = TOKEN,
         timeout: float = 5, fmt: str = "json", path: str = "/webservice/rest/server.php"):
    """POST like a real client; returns (HTTP status, decoded JSON or raw text)."""
    pairs = [("wstoken", token), ("wsfunction", function), ("moodlewsrestformat", fmt)] + form(params or {})
    request = urllib.request.Request(site.base_url + path, data=urllib.parse.urlencode(pairs).encode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def new_user(username: str, **extra) -> dict:
    return {"username": username, "firstname": "Test", "lastname": "User", "email": f"{username}@example.com",
            "password": "P$1berTraining", **extra}


@pytest.fixture
def site():
    with MoodleStandIn(TOKEN) as running:
        yield running


def test_state_file_persists_across_restart(tmp_path):
    state = tmp_path / "moodle.json"
    with MoodleStandIn(TOKEN, state_path=state) as first:
        status, body = call(first, "core_user_create_users", {"users": [new_user("jdoe", idnumber="E1")]})
        assert status == 200 and body[0]["id"] == 3
    assert json.loads(state.read_text())["next_id"] == 4
    with MoodleStandIn(TOKEN, state_path=state) as second:
        _, found = call(second, "core_user_get_users_by_field", {"field": "idnumber", "values": ["E1"]})
        assert [u["username"] for u in found] == ["jdoe"]
        _, created = call(second, "core_user_create_users", {"users": [new_user("asmith")]})
        assert created == [{"id": 4, "username": "asmith"}]  # ids carry on, nothing duplicated
    assert not list(tmp_path.glob("*.tmp"))  # atomic replace leaves no temp file behind


def test_fail_next_requests_answers_the_status_then_recovers(site):
    site.fail_next_requests(2, status=502)
    assert call(site, "core_webservice_get_site_info")[0] == 502
    assert call(site, "core_webservice_get_site_info")[0] == 502
    assert call(site, "core_webservice_get_site_info")[0] == 200
    assert [name for name, _ in site.calls] == ["core_webservice_get_site_info"]  # Moodle saw only one


def test_delay_makes_the_client_time_out_but_the_work_is_done(site):
    site.delay_next_requests(1, 1.0)
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        call(site, "core_user_create_users", {"users": [new_user("slow")]}, timeout=0.2)
    assert [u["username"] for u in site.users.values()] == ["guest", "admin", "slow"]
    _, again = call(site, "core_user_create_users", {"users": [new_user("slow")]})  # a blind retry
    assert again["errorcode"] == "invalidparameter"


def test_concurrent_creates_get_unique_ids(site):
    results = []

    def create(n: int) -> None:
        results.append(call(site, "core_user_create_users", {"users": [new_user(f"user{n}")]})[1][0]["id"])

    threads = [threading.Thread(target=create, args=(n,)) for n in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(3, 28))
    assert len(site.users) == 27


def test_usernames_must_be_lowercase(site):
    status, error = call(site, "core_user_create_users", {"users": [new_user("John.Doe")]})
    assert status == 200 and error["errorcode"] == "invalidparameter" and "debuginfo" not in error
    assert len(site.users) == 2
    assert call(site, "core_user_create_users", {"users": [new_user("john.doe")]})[1][0]["username"] == "john.doe"
    _, lookup = call(site, "core_user_get_users_by_field", {"field": "username", "values": ["John.Doe"]})
    assert lookup["errorcode"] == "invalidparameter"  # lookups are cleaned as strictly


def test_idnumber_lookup_returns_every_match_and_omits_misses(site):
    first = site.add_user(username="a", email="a@example.com", idnumber="E7")
    second = site.add_user(username="b", email="b@example.com", idnumber="E7")  # idnumber is not unique
    _, found = call(site, "core_user_get_users_by_field", {"field": "idnumber", "values": ["E7", "E8"]})
    assert [u["id"] for u in found] == [first["id"], second["id"]]
    assert all(u["idnumber"] == "E7" and u["suspended"] is False for u in found)


def test_create_batch_is_all_or_nothing_and_ids_are_not_reused(site):
    site.add_user(username="taken", email="taken@example.com")  # id 3
    _, error = call(site, "core_user_create_users",
                    {"users": [new_user("ok1"), new_user("ok2"), new_user("taken", email="x@example.com")]})
    assert error["message"] == "Invalid parameter value detected"
    assert sorted(u["username"] for u in site.users.values()) == ["admin", "guest", "taken"]
    _, created = call(site, "core_user_create_users", {"users": [new_user("ok1")]})
    assert created == [{"id": 6, "username": "ok1"}]  # 4 and 5 went with the rolled-back batch


def test_update_users_isolates_failures(site):
    jdoe = site.add_user(username="jdoe", email="jdoe@example.com")
    anna = site.add_user(username="anna", email="anna@example.com")
    _, body = call(site, "core_user_update_users", {"users": [
        {"id": jdoe["id"], "email": "ANNA@example.com"},
        {"id": anna["id"], "suspended": 1, "customfields": [{"type": "uifref", "value": "U9"}]},
        {"id": 1, "firstname": "Guest"}]})
    assert body == {"warnings": [
        {"item": "user", "itemid": jdoe["id"], "warningcode": "useremailduplicate", "message": "Duplicate address"},
        {"item": "user", "itemid": 1, "warningcode": "usernotupdatedguest", "message": "error/usernotupdatedguest"}]}
    assert site.users[jdoe["id"]]["email"] == "jdoe@example.com"
    assert site.users[anna["id"]]["suspended"] == 1 and site.users[anna["id"]]["customfields"] == {"uifref": "U9"}
    _, bad_bool = call(site, "core_user_update_users", {"users": [{"id": anna["id"], "suspended": "true"}]})
    assert bad_bool["errorcode"] == "invalidparameter"  # PARAM_BOOL takes 0/1 only


def test_menu_value_outside_options_is_silently_replaced_by_default(site):
    _, created = call(site, "core_user_create_users", {"users": [new_user("m", customfields=[
        {"type": "gender", "value": "male"}, {"type": "disability", "value": "No"},
        {"type": "nosuch", "value": "x"}])]})
    record = site.users[created[0]["id"]]
    assert record["customfields"] == {"gender": "", "disability": "No"}
    _, found = call(site, "core_user_get_users_by_field", {"field": "username", "values": ["m"]})
    assert [f["shortname"] for f in found[0]["customfields"]] == ["disability"]


def test_createpassword_and_preferences(site):
    _, created = call(site, "core_user_create_users", {"users": [
        {**new_user("gen"), "password": "", "createpassword": 1},
        new_user("fixed", preferences=[{"type": "auth_forcepasswordchange", "value": "1"},
                                       {"type": "not_a_preference", "value": "x"}])]})
    gen, fixed = (site.users[u["id"]] for u in created)
    assert gen["preferences"] == {"auth_forcepasswordchange": "1"}
    assert fixed["preferences"] == {"auth_forcepasswordchange": "1"}
    _, error = call(site, "core_user_create_users", {"users": [{**new_user("nopw"), "password": ""}]})
    assert error["errorcode"] == "invalidparameter"


def test_calls_are_recorded_without_the_token(site):
    call(site, "core_user_get_users_by_field", {"field": "email", "values": ["x@example.com"]})
    call(site, "core_webservice_get_site_info", token="wrong")
    assert site.calls == [("core_user_get_users_by_field", {"field": "email", "values": ["x@example.com"]}),
                          ("core_webservice_get_site_info", {})]
    assert TOKEN not in repr(site.calls)


def test_service_functions_limit_calls_and_site_info():
    unimplemented = "core_course_get_enrolled_courses_by_timeline_classification"
    with MoodleStandIn(TOKEN, functions=["core_webservice_get_site_info", unimplemented]) as site:
        _, info = call(site, "core_webservice_get_site_info")
        assert [f["name"] for f in info["functions"]] == ["core_webservice_get_site_info", unimplemented]
        assert call(site, "core_user_get_users", {"criteria": [{"key": "id", "value": 2}]})[1]["errorcode"] \
            == "accessexception"
        status, text = call(site, unimplemented)
        assert status == 501 and "does not implement" in text


def test_token_is_checked_before_the_function(site):
    _, error = call(site, "no_such_function", token="bad")
    assert error["errorcode"] == "invalidtoken"
    assert call(site, "no_such_function")[1]["errorcode"] == "invalidrecord"


def test_expired_token_is_deleted_after_its_first_use(site):
    site.expired_token = True
    assert call(site, "core_webservice_get_site_info")[1]["errorcode"] == "accessexception"
    assert call(site, "core_webservice_get_site_info")[1]["errorcode"] == "invalidtoken"


def test_disabled_web_services_and_other_paths(site):
    assert call(site, "core_webservice_get_site_info", path="/login/index.php")[0] == 404
    site.web_services_enabled = False
    assert call(site, "core_webservice_get_site_info") == (403, "")


def test_a_stopped_site_does_not_answer_on_kept_alive_connections():
    site = MoodleStandIn(TOKEN).start()
    connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=5)
    body = urllib.parse.urlencode({"wstoken": TOKEN, "wsfunction": "core_webservice_get_site_info",
                                   "moodlewsrestformat": "json"})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    connection.request("POST", "/webservice/rest/server.php", body, headers)
    assert connection.getresponse().read()
    site.stop()
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        connection.request("POST", "/webservice/rest/server.php", body, headers)
        connection.getresponse()
    connection.close()


def test_email_rules(site):
    site.add_user(username="a", email="Shared@Example.com")
    _, error = call(site, "core_user_create_users", {"users": [new_user("b", email="shared@example.com")]})
    assert error["errorcode"] == "invalidparameter"
    site.allow_accounts_same_email = True
    assert call(site, "core_user_create_users", {"users": [new_user("b", email="shared@example.com")]})[0] == 200
    _, error = call(site, "core_user_create_users", {"users": [new_user("c", email="c@localhost")]})
    assert error["errorcode"] == "invalidparameter"  # FILTER_VALIDATE_EMAIL wants a dotted domain
    _, found = call(site, "core_user_get_users_by_field", {"field": "email", "values": ["SHARED@example.com"]})
    assert found == []  # an exact match, case included (PostgreSQL)


def test_get_users_like_and_criteria_rules(site):
    site.add_user(username="a", firstname="Thandi", email="a@acme.test")
    site.add_user(username="b", firstname="Thabo", email="b@acme.test")
    _, body = call(site, "core_user_get_users", {"criteria": [{"key": "firstname", "value": "tha_d%"},
                                                             {"key": "email", "value": "%@ACME.test"}]})
    assert [u["username"] for u in body["users"]] == ["a"] and body["warnings"] == []
    _, twice = call(site, "core_user_get_users", {"criteria": [{"key": "email", "value": "%"},
                                                              {"key": "email", "value": "%"}]})
    assert (twice["errorcode"], twice["message"]) == ("keyalreadyset", "error/keyalreadyset")
    _, none = call(site, "core_user_get_users")  # an empty array cannot be form-encoded
    assert none["errorcode"] == "invalidparameter"


def test_decode_form_follows_php():
    pairs = [("values[]", "a"), ("values[]", "b"), ("u[3][x]", "1"), ("u[1][x]", "2"), ("k[a]", "1"), ("s", "x")]
    # integer-keyed arrays become lists in the order sent, as PHP's foreach sees them
    assert decode_form(pairs) == {"values": ["a", "b"], "u": [{"x": "1"}, {"x": "2"}], "k": {"a": "1"}, "s": "x"}
    assert decode_form([(f"v[{i}]", str(i)) for i in range(10)], max_vars=4) == {"v": ["0", "1", "2", "3"]}


def test_xml_is_the_default_format(site):
    status, text = call(site, "core_webservice_get_site_info", fmt="")
    assert status == 200 and text.startswith('<?xml version="1.0" encoding="UTF-8" ?>\n<RESPONSE>')
    _, error = call(site, "core_webservice_get_site_info", token="bad", fmt="")
    assert '<EXCEPTION class="core\\exception\\moodle_exception">' in error


def test_debug_shows_debuginfo(site):
    site.debug = True
    site.add_user(username="jdoe", email="jdoe@example.com")
    _, error = call(site, "core_user_create_users", {"users": [new_user("jdoe", email="new@example.com")]})
    assert error["debuginfo"] == "Username already exists: jdoe"
    assert error["message"] == "Invalid parameter value detected (Username already exists: jdoe)"


def test_cli_prints_its_url_and_serves(tmp_path):
    env = {**os.environ, "MOODLE_STAND_IN_TOKEN": TOKEN, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "moodle_stand_in", "--port", "0",
                                "--state-file", str(tmp_path / "state.json")],
                               env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        site = MoodleStandIn(TOKEN)
        site.port = int(line.rsplit(":", 1)[1])
        assert call(site, "core_user_create_users", {"users": [new_user("cli")]})[0] == 200
        assert "cli" in (tmp_path / "state.json").read_text()
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
    missing = subprocess.run([sys.executable, "-m", "moodle_stand_in"], capture_output=True, text=True,
                             env={k: v for k, v in env.items() if k != "MOODLE_STAND_IN_TOKEN"})
    assert missing.returncode == 2 and "MOODLE_STAND_IN_TOKEN" in missing.stderr


# --------------------------------------------------------------------------- courses, enrolments, grades, completion


def driver_course(site: MoodleStandIn, **extra) -> tuple[dict, dict]:
    """A category, a course in it with custom fields, and an enrolled student."""
    category = site.add_category("Driver Training", idnumber="DT")
    course = site.add_course("DRV101", "Defensive driving", categoryid=category["id"], idnumber="D101",
                             customfields={"nqflevel": "NQF 4", "saqaregistered": "1", "unitstandardid": "US 9"},
                             **extra)
    user = site.add_user(username="jdoe", firstname="John", lastname="Doe", email="jdoe@example.com", idnumber="E1")
    site.enrol(user["id"], course["id"])
    return course, user


def test_course_state_survives_a_restart(tmp_path):
    state = tmp_path / "moodle.json"
    with MoodleStandIn(TOKEN, state_path=state) as first:
        course, user = driver_course(first)
        first.set_grade(course["id"], user["id"], 81.5, dategraded=1_700_000_000)
        first.complete(course["id"], user["id"], timecompleted=1_700_000_100)
        first.touch(user["id"], 1_700_000_200)
        first.course_custom_fields.append({"shortname": "extra", "name": "Extra", "type": "text"})
        first.update_course(course["id"], customfields={"extra": "kept"})
    with MoodleStandIn(TOKEN, state_path=state) as second:
        _, courses = call(second, "core_course_get_courses", {"options": {"ids": [course["id"]]}})
        fields = {f["shortname"]: (f["valueraw"], f["value"]) for f in courses[0]["customfields"]}
        assert fields["nqflevel"] == (4, "NQF 4") and fields["saqaregistered"] == (1, "Yes")
        assert fields["extra"] == ("kept", "kept")
        _, grades = call(second, "gradereport_user_get_grade_items", {"courseid": course["id"]})
        item = grades["usergrades"][0]["gradeitems"][0]
        assert (item["graderaw"], item["gradedategraded"]) == (81.5, 1_700_000_000)
        _, status = call(second, "core_completion_get_course_completion_status",
                         {"courseid": course["id"], "userid": user["id"]})
        assert status["completionstatus"]["completed"] is True
        assert status["completionstatus"]["completions"][0]["timecompleted"] == 1_700_000_100
        _, mine = call(second, "core_enrol_get_users_courses", {"userid": user["id"]})
        assert [(c["id"], c["lastaccess"]) for c in mine] == [(course["id"], 1_700_000_200)]
        again = second.add_course("DRV102", categoryid=course["category"])
        assert again["id"] == course["id"] + 1  # ids carry on after a restart


def test_an_old_state_file_without_courses_still_loads(tmp_path):
    state = tmp_path / "moodle.json"
    state.write_text(json.dumps({"next_id": 3, "users": {}}))
    with MoodleStandIn(TOKEN, state_path=state) as site:
        _, courses = call(site, "core_course_get_courses")
        assert [(c["id"], c["format"]) for c in courses] == [(1, "site")]


def test_deleted_course_disappears(site):
    course, user = driver_course(site)
    _, before = call(site, "core_course_get_courses")
    assert [c["id"] for c in before] == [1, course["id"]]
    site.delete_course(course["id"])
    _, after = call(site, "core_course_get_courses")
    assert [c["id"] for c in after] == [1]
    assert call(site, "core_enrol_get_users_courses", {"userid": user["id"]})[1] == []
    _, error = call(site, "core_enrol_get_enrolled_users", {"courseid": course["id"]})
    assert (error["exception"], error["message"]) == ("dml_missing_record_exception",
                                                      "Can't find data record in database table course.")


def test_hidden_course_is_visible_0_and_hidden_from_students(site):
    course, student = driver_course(site)
    teacher = site.add_user(username="teach", email="teach@example.com")
    site.enrol(teacher["id"], course["id"], role="editingteacher")
    site.update_course(course["id"], visible=0)
    _, courses = call(site, "core_course_get_courses", {"options": {"ids": [course["id"]]}})
    assert courses[0]["visible"] == 0
    assert call(site, "core_enrol_get_users_courses", {"userid": student["id"]})[1] == []
    _, teaching = call(site, "core_enrol_get_users_courses", {"userid": teacher["id"]})
    assert [(c["id"], c["visible"]) for c in teaching] == [(course["id"], 0)]
    _, members = call(site, "core_enrol_get_enrolled_users", {"courseid": course["id"]})
    assert [m["id"] for m in members] == [student["id"], teacher["id"]]  # still enrolled, just not told


def test_suspended_enrolment_is_only_in_get_enrolled_users(site):
    course, user = driver_course(site)
    site.enrol(user["id"], course["id"], suspended=True)
    assert call(site, "core_enrol_get_users_courses", {"userid": user["id"]})[1] == []
    assert [m["id"] for m in call(site, "core_enrol_get_enrolled_users", {"courseid": course["id"]})[1]] \
        == [user["id"]]
    active = call(site, "core_enrol_get_enrolled_users",
                  {"courseid": course["id"], "options": [{"name": "onlyactive", "value": "1"}]})[1]
    assert active == []
    assert call(site, "gradereport_user_get_grade_items", {"courseid": course["id"]})[1]["usergrades"] == []
    _, error = call(site, "core_completion_get_course_completion_status",
                    {"courseid": course["id"], "userid": user["id"]})
    assert error["errorcode"] == "usernotenroled"


def test_grade_change_updates_gradedategraded(site):
    course, user = driver_course(site)

    def total() -> dict:
        _, body = call(site, "gradereport_user_get_grade_items", {"courseid": course["id"], "userid": user["id"]})
        return body["usergrades"][0]["gradeitems"][0]

    assert (total()["graderaw"], total()["gradedategraded"], total()["gradeformatted"]) == (None, None, "-")
    site.set_grade(course["id"], user["id"], 40, grademax=80, dategraded=1_600_000_000)
    first = total()
    assert (first["graderaw"], first["gradedategraded"], first["percentageformatted"], first["rangeformatted"]) \
        == (40.0, 1_600_000_000, "50.00 %", "0&ndash;80")
    site.set_grade(course["id"], user["id"], 60, grademax=80)
    second = total()
    assert second["graderaw"] == 60.0 and second["gradedategraded"] > 1_600_000_000
    assert second["gradedatesubmitted"] == first["gradedatesubmitted"]  # the grade record's creation time


def test_touch_moves_lastaccess_everywhere(site):
    course, user = driver_course(site)
    _, found = call(site, "core_user_get_users_by_field", {"field": "id", "values": [user["id"]]})
    assert (found[0]["firstaccess"], found[0]["lastaccess"]) == (0, 0)
    assert call(site, "core_enrol_get_users_courses", {"userid": user["id"]})[1][0]["lastaccess"] is None
    site.touch(user["id"], 1_650_000_000)
    site.touch(user["id"], 1_650_000_900)
    _, found = call(site, "core_user_get_users_by_field", {"field": "id", "values": [user["id"]]})
    assert (found[0]["firstaccess"], found[0]["lastaccess"]) == (1_650_000_000, 1_650_000_900)
    assert call(site, "core_enrol_get_users_courses", {"userid": user["id"]})[1][0]["lastaccess"] == 1_650_000_900
    _, members = call(site, "core_enrol_get_enrolled_users", {"courseid": course["id"]})
    assert members[0]["lastcourseaccess"] == 1_650_000_900


def test_completion_errors_in_moodle_order(site):
    course, user = driver_course(site, has_completion_criteria=False)
    ask = {"courseid": course["id"], "userid": user["id"]}
    assert call(site, "core_completion_get_course_completion_status", ask)[1]["errorcode"] == "nocriteriaset"
    site.unenrol(user["id"], course["id"])
    assert call(site, "core_completion_get_course_completion_status", ask)[1]["errorcode"] == "usernotenroled"
    site.update_course(course["id"], enablecompletion=0)
    assert call(site, "core_completion_get_course_completion_status", ask)[1]["errorcode"] == "cannotviewreport"
    _, admin = call(site, "core_completion_get_course_completion_status", {"courseid": 1, "userid": 2})
    assert (admin["errorcode"], admin["message"]) == ("notenroled", "You are not enrolled in this course")


def test_categories_sort_by_sortorder_as_strings(site):
    for n in range(10):
        site.add_category(f"C{n + 2}")
    _, categories = call(site, "core_course_get_categories")
    orders = [c["sortorder"] for c in categories]
    assert orders[:3] == [10000, 100000, 110000]  # strcmp: "100000" < "20000"
    _, only = call(site, "core_course_get_categories", {"criteria": [{"key": "name", "value": "C5"}]})
    assert [c["name"] for c in only] == ["C5"]


def test_custom_field_values_and_defaults(site):
    site.course_custom_fields[0]["includetime"] = 1  # testdates
    site.course_custom_fields.append({"shortname": "secret", "name": "Secret", "type": "text", "visibility": 0})
    category = site.add_category("Other")
    course = site.add_course("X1", categoryid=category["id"], customfields={
        "testdates": 1_704_103_200, "anothertest": "Expert", "nqflevel": "NQF 10", "unitstandardid": "A & B",
        "secret": "hidden"})
    _, courses = call(site, "core_course_get_courses", {"options": {"ids": [course["id"]]}})
    fields = {f["shortname"]: (f["valueraw"], f["value"]) for f in courses[0]["customfields"]}
    assert fields["testdates"] == (1_704_103_200, "Monday, 1 January 2024, 10:00 AM")
    assert fields["anothertest"] == (0, None)  # not an option: stored as 0, no value
    assert fields["nqflevel"] == (10, "NQF 10")
    assert fields["unitstandardid"] == ("A & B", "A &amp; B")
    assert fields["saqaregistered"] == (0, "No") and fields["testtextarea"] == ("", None)
    assert fields["passrate"] == (None, None)  # an empty number field: null, not ''
    assert "secret" not in fields  # visibility 0: not even an admin sees it


@pytest.mark.parametrize(("entered", "valueraw", "value"), [
    ("70", 70, "70"), ("72.5", 72.5, "73"), ("0", 0, "0"), ("", None, None)])
def test_number_custom_field(site, entered, valueraw, value):
    """customfield_number (Pass Rate on the live site): type 'number', valueraw a JSON int unless fractional,
    value formatted with the field's 0 decimal places."""
    course = site.add_course("N1", categoryid=1, customfields={"passrate": entered})
    _, courses = call(site, "core_course_get_courses", {"options": {"ids": [course["id"]]}})
    (field,) = [f for f in courses[0]["customfields"] if f["shortname"] == "passrate"]
    assert field == {"name": "Pass Rate", "shortname": "passrate", "type": "number", "valueraw": valueraw,
                     "value": value}
    assert type(field["valueraw"]) is type(valueraw)
    with pytest.raises(ValueError):
        site.add_course("N2", categoryid=1, customfields={"passrate": "seventy"})  # the course form refuses it


def test_signup_settings_list_signup_fields_until_disabled(site):
    site.profile_fields[0]["signup"] = 0
    _, settings = call(site, "auth_email_get_signup_settings")
    assert [f["shortname"] for f in settings["profilefields"]] == [
        "disability", "employmenttype", "uifref", "sdlref", "employeenumber"]
    site.signup_enabled = False
    _, error = call(site, "auth_email_get_signup_settings")
    assert (error["errorcode"], error["message"]) == ("registrationdisabled", "Registration is disabled on this site")


def test_control_methods_are_thread_safe(tmp_path):
    with MoodleStandIn(TOKEN, state_path=tmp_path / "state.json") as site:
        category = site.add_category("Load")
        users = [site.add_user(username=f"u{n}", email=f"u{n}@example.com") for n in range(10)]
        errors = []

        def work(n: int) -> None:
            try:
                course = site.add_course(f"C{n}", categoryid=category["id"])
                for user in users:
                    site.enrol(user["id"], course["id"])
                    site.set_grade(course["id"], user["id"], n)
                status, body = call(site, "core_enrol_get_enrolled_users", {"courseid": course["id"]})
                assert status == 200 and len(body) == len(users)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(site.courses) == 9 and len({c["gradeitemid"] for c in site.courses.values()}) == 9
    saved = json.loads((tmp_path / "state.json").read_text())
    assert len(saved["courses"]) == 9 and sum(len(v) for v in saved["grades"].values()) == 80


# --------------------------------------------------------------------------- what Moodle refuses (dirty HR data)

WRITE_ERROR = ("dml_write_exception", "dmlwriteexception", "Error writing to database")
INVALID_PARAMETER = ("core\\exception\\invalid_parameter_exception", "invalidparameter",
                     "Invalid parameter value detected")


def error_of(body) -> tuple[str, str, str]:
    return body["exception"], body["errorcode"], body["message"]


@pytest.mark.parametrize(("change", "expected"), [
    ({"firstname": "Ann\0"}, INVALID_PARAMETER),                 # fix_utf8() strips NUL: the value changed
    ({"lastname": "<b>Smith</b>"}, INVALID_PARAMETER),           # PARAM_NOTAGS strips the markup
    ({"firstname": "Thabo <3"}, INVALID_PARAMETER),              # strip_tags() takes '<3' for a tag
    ({"firstname": "   "}, INVALID_PARAMETER),                   # blank after trim()
    ({"username": "JSmith"}, INVALID_PARAMETER),                 # PARAM_USERNAME would lower-case it
    ({"email": "jsmith@localhost"}, INVALID_PARAMETER),          # FILTER_VALIDATE_EMAIL: no dotted domain
    ({"email": "j smith@example.com"}, INVALID_PARAMETER),
    ({"email": "jsmith@example..com"}, INVALID_PARAMETER),
    ({"email": "<jsmith@example.com>"}, INVALID_PARAMETER),
    ({"firstname": "A" * 101}, WRITE_ERROR),                     # mdl_user.firstname is varchar(100)
    ({"lastname": "B" * 101}, WRITE_ERROR),
    ({"email": "j" * 60 + "@" + "e" * 36 + ".com"}, WRITE_ERROR),  # valid, but 101 characters
    ({"username": "u" * 101}, WRITE_ERROR),
    ({"idnumber": "7" * 256}, WRITE_ERROR),                      # varchar(255)
    ({"department": "D" * 256}, WRITE_ERROR),
    ({"phone1": "0" * 21}, WRITE_ERROR),                         # varchar(20)
])
def test_create_users_refuses_the_whole_batch(site, change, expected):
    batch = [new_user("first"), {**new_user("jsmith"), **change}, new_user("last")]
    status, body = call(site, "core_user_create_users", {"users": batch})
    assert status == 200 and error_of(body) == expected
    assert sorted(u["username"] for u in site.users.values()) == ["admin", "guest"]  # all or nothing


def test_create_users_accepts_what_moodle_accepts(site):
    edge = [new_user("a", firstname="A" * 100, lastname="Smith & Sons < Co", idnumber="7" * 255),
            new_user("b", email="b" * 60 + "@" + "e" * 35 + ".com", phone1="0" * 20)]
    status, body = call(site, "core_user_create_users", {"users": edge})
    assert status == 200 and [u["username"] for u in body] == ["a", "b"]
    assert site.users[body[0]["id"]]["lastname"] == "Smith & Sons < Co"  # '<' before a space is no tag


def test_create_users_refuses_the_same_username_twice_and_an_email_in_another_case(site):
    site.add_user(username="taken", email="Mixed.Case@Example.com")
    _, twice = call(site, "core_user_create_users", {"users": [new_user("dup"), new_user("dup", email="d2@x.com")]})
    _, other_case = call(site, "core_user_create_users", {"users": [new_user("new", email="mixed.case@example.com")]})
    assert error_of(twice) == error_of(other_case) == INVALID_PARAMETER
    assert sorted(u["username"] for u in site.users.values()) == ["admin", "guest", "taken"]


def test_invalid_utf8_is_refused_like_a_nul_byte(site):
    body = (f"wstoken={TOKEN}&wsfunction=core_user_create_users&moodlewsrestformat=json"
            "&users[0][username]=bad&users[0][firstname]=Ann%FF&users[0][lastname]=X"
            "&users[0][email]=bad%40example.com&users[0][password]=P%241berTraining").encode()
    request = urllib.request.Request(site.base_url + "/webservice/rest/server.php", data=body)
    with urllib.request.urlopen(request, timeout=5) as response:
        assert error_of(json.loads(response.read())) == INVALID_PARAMETER
    assert len(site.users) == 2


def test_update_users_dirty_values(site):
    anna = site.add_user(username="anna", email="anna@example.com", lastname="Old")
    bob = site.add_user(username="bob", email="bob@example.com", lastname="Old")
    _, nul = call(site, "core_user_update_users", {"users": [{"id": anna["id"], "lastname": "New"},
                                                              {"id": bob["id"], "lastname": "Ne\0w"}]})
    assert error_of(nul) == INVALID_PARAMETER  # parameters are validated before any user is touched
    assert site.users[anna["id"]]["lastname"] == "Old"
    _, body = call(site, "core_user_update_users", {"users": [{"id": anna["id"], "lastname": "L" * 101},
                                                               {"id": bob["id"], "lastname": "New"}]})
    assert body == {"warnings": [{"item": "user", "itemid": anna["id"], "warningcode": "dmlwriteexception",
                                  "message": "Error writing to database"}]}
    assert (site.users[anna["id"]]["lastname"], site.users[bob["id"]]["lastname"]) == ("Old", "New")


def test_a_database_that_refuses_every_write_fails_inserts_whole_and_updates_user_by_user(site):
    anna = site.add_user(username="anna", email="anna@example.com", lastname="Old")
    site.database_refuses_writes = True
    users_before = len(site.users)
    _, created = call(site, "core_user_create_users", {"users": [new_user("jdoe", idnumber="E1")]})
    assert error_of(created) == WRITE_ERROR and "debuginfo" not in created and len(site.users) == users_before
    _, updated = call(site, "core_user_update_users", {"users": [{"id": anna["id"], "lastname": "New"}]})
    assert updated == {"warnings": [{"item": "user", "itemid": anna["id"], "warningcode": "dmlwriteexception",
                                     "message": "Error writing to database"}]}
    _, course = call(site, "core_course_create_courses", {"courses": [
        {"fullname": "Maths", "shortname": "MA", "categoryid": 1}]})
    assert error_of(course) == WRITE_ERROR
    site.database_refuses_writes = False
    assert call(site, "core_user_update_users", {"users": [{"id": anna["id"], "lastname": "New"}]})[1] == \
        {"warnings": []}


def test_weak_password_in_update_users_fails_the_answer_but_not_the_others(site):
    anna = site.add_user(username="anna", email="anna@example.com", password="P$1berTraining")
    bob = site.add_user(username="bob", email="bob@example.com", firstname="Bob")
    before = site.users[anna["id"]]["password_hash"]
    status, body = call(site, "core_user_update_users", {"users": [{"id": bob["id"], "firstname": "Robert"},
                                                                    {"id": anna["id"], "password": "abc"}]})
    assert status == 200 and body == {"exception": "core\\exception\\invalid_response_exception",
                                      "errorcode": "invalidresponse", "message": "Invalid response value detected"}
    assert site.users[bob["id"]]["firstname"] == "Robert"          # its own transaction: committed
    assert site.users[anna["id"]]["password_hash"] == before       # the weak password was not written


def test_past_max_input_vars_php_drops_the_tail_silently(site):
    users = [new_user(f"mz{n:04d}", idnumber=f"MZ{n}", department="D", lang="en") for n in range(630)]
    status, created = call(site, "core_user_create_users", {"users": users})  # 3 + 630 x 8 = 5,043 variables
    assert status == 200 and len(created) == 625 and created[-1]["username"] == "mz0624"
    last = site.users[created[-1]["id"]]
    assert (last["idnumber"], last["department"]) == ("MZ624", "")  # 5,001 variables kept: department, lang cut
    assert site.server_log == ["PHP Warning:  Unknown: Input variables exceeded 5000. To increase the limit change "
                               "max_input_vars in php.ini. in Unknown on line 0"]
    site.max_input_vars = 6000  # a site with a higher limit takes the whole call
    assert len(call(site, "core_user_create_users", {"users": [new_user(f"x{n}") for n in range(630)]})[1]) == 630


def test_accepted_connections_have_tcp_nodelay(site, monkeypatch):
    from moodle_stand_in import server

    seen = []
    setup = server._Handler.setup

    def record(handler):
        setup(handler)
        seen.append(handler.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(server._Handler, "setup", record)
    assert call(site, "core_webservice_get_site_info")[0] == 200
    assert seen and all(seen)  # small answers leave at once, not ~40 ms later (Nagle + delayed ACK)


def test_admin_maintenance_mode_answers_an_error_object(site):
    site.maintenance = "admin"
    status, body = call(site, "core_webservice_get_site_info")
    assert status == 200 and body == {"exception": "core\\exception\\moodle_exception", "errorcode": "sitemaintenance",
                                      "message": "The site is undergoing maintenance and is currently not available"}
    assert call(site, "core_webservice_get_site_info", token="bad")[1]["errorcode"] == "invalidtoken"  # token first
    assert "<ERRORCODE>sitemaintenance</ERRORCODE>" in call(site, "core_webservice_get_site_info", fmt="")[1]
    site.maintenance = None
    assert call(site, "core_webservice_get_site_info")[1]["username"] == "admin"


def test_cli_maintenance_mode_answers_every_request_with_the_503_page(site):
    site.maintenance = "cli"
    site.web_services_enabled = False
    status, page = call(site, "core_webservice_get_site_info")
    assert status == 503 and page.startswith("<!DOCTYPE html>\r\n") and "<style>" in page  # 4.5.6's page
    assert "<h1>Moodle under maintenance</h1>" in page
    assert call(site, "core_webservice_get_site_info", token="bad", path="/login/index.php")[0] == 503
    assert site.calls == []  # Moodle never got as far as the web service


def test_token_user_sees_its_own_preferences_and_a_non_admin_site_info(site):
    ws = site.add_user(username="psiberws", email="ws@example.com",
                       preferences={"auth_manual_passwordupdatetime": "1795432704"})
    site.set_token_user(ws["id"])
    _, info = call(site, "core_webservice_get_site_info")
    assert (info["username"], info["userissiteadmin"], info["userquota"], info["usermaxuploadfilesize"]) == \
        ("psiberws", False, 104857600, 2097152)
    _, body = call(site, "core_user_get_users", {"criteria": [{"key": "email", "value": "%"}]})
    with_preferences = [u["username"] for u in body["users"] if "preferences" in u]
    assert with_preferences == ["psiberws"]
    (own,) = [u for u in body["users"] if "preferences" in u]
    assert own["preferences"][0] == {"name": "auth_manual_passwordupdatetime", "value": "1795432704"}
    assert own["preferences"][-1]["name"] == "_lastloaded" and isinstance(own["preferences"][-1]["value"], int)
    with pytest.raises(ValueError):
        site.set_token_user(1)  # the guest owns no token


# --------------------------------------------------------------------------- live-site course, grade and signup shapes


def course_ids(site, **options) -> list[int]:
    return [c["id"] for c in call(site, "core_course_get_courses", {"options": options} if options else None)[1]]


def test_get_courses_answers_in_the_rows_physical_order(site):
    first, second, third = (site.add_course(code, categoryid=1)["id"] for code in ("A1", "B2", "C3"))
    assert course_ids(site) == [1, first, second, third]  # as inserted
    site.update_course(first, fullname="Renamed")          # an UPDATE writes the row's new version last
    assert course_ids(site) == [1, second, third, first]
    assert course_ids(site, ids=[first, second, 9999]) == [second, first]  # not the order asked for, not by id
    site.reorder_courses([third, second, first])            # the site course last, as in one live answer
    assert course_ids(site) == [third, second, first, 1]
    site.delete_course(second)
    assert course_ids(site) == [third, first, 1]


def test_site_course_and_completion_off_courses(site):
    off = site.add_course("OFF", categoryid=1, enablecompletion=0)
    on = site.add_course("ON", categoryid=1)
    _, courses = call(site, "core_course_get_courses")
    shown = {c["id"]: c for c in courses}
    assert (shown[1]["summaryformat"], shown[1]["courseformatoptions"], shown[1]["showcompletionconditions"]) \
        == (0, [{"name": "numsections", "value": 1}], None)
    assert shown[off["id"]]["showcompletionconditions"] is None
    assert shown[on["id"]]["showcompletionconditions"] is True and shown[on["id"]]["summaryformat"] == 1
    user = site.add_user(username="u", email="u@example.com")
    site.enrol(user["id"], off["id"])
    assert call(site, "core_enrol_get_users_courses", {"userid": user["id"]})[1][0]["showcompletionconditions"] \
        is None
    site.update_course(on["id"], enablecompletion=0)
    site.update_course(off["id"], enablecompletion=1)  # the form's default comes back
    shown = {c["id"]: c for c in call(site, "core_course_get_courses")[1]}
    assert (shown[on["id"]]["showcompletionconditions"], shown[off["id"]]["showcompletionconditions"]) == (None, True)


def test_progress_is_100_once_a_course_without_activities_is_complete(site):
    course, user = driver_course(site)

    def progress():
        return call(site, "core_enrol_get_users_courses", {"userid": user["id"]})[1][0]["progress"]

    assert progress() is None
    site.complete(course["id"], user["id"], timecompleted=1_700_000_000)
    assert progress() == 100
    site.update_course(course["id"], enablecompletion=0)
    assert progress() is None


def grade_rows(site, courseid: int, userid: int) -> list[dict]:
    _, body = call(site, "gradereport_user_get_grade_items", {"courseid": courseid, "userid": userid})
    return body["usergrades"][0]["gradeitems"]


def test_grades_are_json_ints_unless_fractional_and_items_come_before_the_total(site):
    course, user = driver_course(site)
    site.set_grade(course["id"], user["id"], 45, dategraded=1_700_000_000)
    item, total = grade_rows(site, course["id"], user["id"])
    assert (item["itemtype"], item["itemname"], item["weightraw"], item["weightformatted"]) == \
        ("manual", "Final assessment", 1, "100.00 %")
    assert total["itemtype"] == "course" and "weightraw" not in total
    for row in (item, total):
        assert [type(row[key]) for key in ("graderaw", "grademin", "grademax")] == [int, int, int]
        assert row["gradedatesubmitted"] is None and row["gradedategraded"] == 1_700_000_000
    assert total["feedbackformat"] == 2  # an aggregated total, as the live site answers
    site.set_grade(course["id"], user["id"], 72.5)
    assert type(grade_rows(site, course["id"], user["id"])[1]["graderaw"]) is float


def test_natural_aggregation_counts_only_graded_items(site):
    course, user = driver_course(site)
    site.add_grade_item(course["id"], "Theory", grademax=50)
    site.add_grade_item(course["id"], "Practical", grademax=100)
    site.set_grade(course["id"], user["id"], 40, item="Theory", grademax=50)
    theory, practical, total = grade_rows(site, course["id"], user["id"])
    assert (theory["weightraw"], "weightraw" in practical) == (1, False)  # an empty grade is excluded
    assert (total["graderaw"], total["grademax"], total["percentageformatted"]) == (40, 50, "80.00 %")
    site.set_grade(course["id"], user["id"], 120, item="Practical")  # bounded by the item's range
    theory, practical, total = grade_rows(site, course["id"], user["id"])
    assert (practical["graderaw"], total["graderaw"], total["grademax"]) == (100, 140, 150)
    assert (theory["weightformatted"], practical["weightformatted"]) == ("33.33 %", "66.67 %")


def test_a_course_without_grade_items_has_a_0_0_total_and_stores_an_override_as_0(site):
    course, user = driver_course(site)
    (empty,) = grade_rows(site, course["id"], user["id"])
    assert (empty["graderaw"], empty["grademax"], empty["rangeformatted"], empty["percentageformatted"]) == \
        (None, 0, "0&ndash;0", "-")
    site.set_grade(course["id"], user["id"], 72.5, override=True, dategraded=1_700_000_000)
    (total,) = grade_rows(site, course["id"], user["id"])
    assert (total["graderaw"], total["grademax"], total["gradeisoverridden"], total["gradeformatted"],
            total["percentageformatted"], total["gradedategraded"]) == (0, 0, True, "0.00", "", 1_700_000_000)
    site.add_grade_item(course["id"], "Exam")  # now the total's range is 0-100: a new override keeps its value
    site.set_grade(course["id"], user["id"], 72.5, override=True)
    assert grade_rows(site, course["id"], user["id"])[-1]["graderaw"] == 72.5


def test_an_override_made_before_the_first_regrade_keeps_its_0_100_range(site):
    """Lab finding 04: live, such an override of a course without grade items answers 72.5 of 100."""
    course, user = driver_course(site)
    site.set_grade(course["id"], user["id"], 72.5, override=True, before_first_regrade=True, dategraded=1_700_000_000)
    (total,) = grade_rows(site, course["id"], user["id"])
    assert (total["graderaw"], total["grademin"], total["grademax"], total["rangeformatted"], total["gradeformatted"],
            total["percentageformatted"], total["gradeisoverridden"]) == \
        (72.5, 0, 100, "0&ndash;100", "72.50", "72.50 %", True)
    site.add_grade_item(course["id"], "Exam", grademax=50)  # a regrade leaves its range alone
    assert grade_rows(site, course["id"], user["id"])[-1]["grademax"] == 100


def test_a_state_file_with_course_totals_gets_them_as_item_grades(tmp_path):
    state = tmp_path / "moodle.json"
    with MoodleStandIn(TOKEN, state_path=state) as first:
        course, user = driver_course(first)
    saved = json.loads(state.read_text())  # as an earlier stand-in wrote it: the total itself, no items
    saved["grades"] = {str(course["id"]): {str(user["id"]): {"timecreated": 1, "finalgrade": 81.5, "grademax": 90.0,
                                                             "dategraded": 1_700_000_000}}}
    for key in ("grade_items", "course_rows"):
        del saved[key]
    state.write_text(json.dumps(saved))
    with MoodleStandIn(TOKEN, state_path=state) as second:
        item, total = grade_rows(second, course["id"], user["id"])
        assert (item["itemname"], total["graderaw"], total["grademax"]) == ("Final assessment", 81.5, 90)
        assert course_ids(second) == [1, course["id"]]


def test_signup_settings_field_params_as_the_live_site(site):
    _, settings = call(site, "auth_email_get_signup_settings")
    fields = {f["shortname"]: f for f in settings["profilefields"]}
    assert fields["gender"]["param2"] == fields["gender"]["param1"] == "Male\nFemale\nOther"
    assert [fields["uifref"][f"param{n}"] for n in range(1, 6)] == ["30", "2048", "0", "", ""]
    assert {f["defaultdataformat"] for f in fields.values()} == {0}


def test_site_info_function_versions_are_their_components(site):
    _, info = call(site, "core_webservice_get_site_info")
    versions = {f["name"]: f["version"] for f in info["functions"]}
    assert (versions["core_user_create_users"], versions["gradereport_user_get_grade_items"],
            versions["auth_email_get_signup_settings"]) == ("2024100706", "2024100700", "2024100700")
    assert (info["release"], info["version"]) == ("4.5.6 (Build: 20250811)", "2024100706")
