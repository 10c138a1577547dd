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
PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


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
    with MoodleStandIn(TOKEN, functions=["core_webservice_get_site_info", "core_course_get_courses"]) as site:
        _, info = call(site, "core_webservice_get_site_info")
        assert [f["name"] for f in info["functions"]] == ["core_webservice_get_site_info", "core_course_get_courses"]
        assert call(site, "core_user_get_users", {"criteria": [{"key": "id", "value": 2}]})[1]["errorcode"] \
            == "accessexception"
        status, text = call(site, "core_course_get_courses")
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
    env = {**os.environ, "MOODLE_STAND_IN_TOKEN": TOKEN, "PYTHONPATH": str(PLUGINS)}
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
