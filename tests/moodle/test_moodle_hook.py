"""MoodleHook against the Moodle stand-in: encoding, typed errors, retries, and no token in logs."""

import json
import logging
import socket

import pytest
import requests

from moodle.exceptions import (
    MoodleFunctionUnavailableError,
    MoodleInvalidTokenError,
    MoodleNotASiteError,
    MoodleRequestError,
    MoodleTransientError,
    MoodleUnreachableError,
    MoodleWebServicesDisabledError,
)
from moodle.hook import MoodleHook
from moodle_stand_in import MoodleStandIn

TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def moodle():
    with MoodleStandIn(TOKEN) as stand_in:
        yield stand_in


def hook_for(monkeypatch, host: str, token: str = TOKEN, **extra) -> MoodleHook:
    monkeypatch.setenv("AIRFLOW_CONN_MOODLE_TEST",
                       json.dumps({"conn_type": "http", "host": host, "password": token, "extra": extra}))
    return MoodleHook("moodle_test", backoff_seconds=0.01)


@pytest.fixture
def sent_urls(monkeypatch):
    urls = []
    original = requests.Session.send

    def send(self, request, **kwargs):
        urls.append(request.url)
        return original(self, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", send)
    return urls


def test_call_encodes_nested_params_and_sends_the_token_in_the_body_only(moodle, monkeypatch, sent_urls):
    hook = hook_for(monkeypatch, moodle.base_url)
    created = hook.call("core_user_create_users", users=[{
        "username": "thabo@example.com", "firstname": "Thabo", "lastname": "Mokoena", "email": "thabo@example.com",
        "idnumber": "E001", "createpassword": 1, "customfields": [{"type": "gender", "value": "Male"}]}])
    [user] = hook.call("core_user_get_users_by_field", field="idnumber", values=["E001"])
    assert created == [{"id": user["id"], "username": "thabo@example.com"}]
    assert {f["shortname"]: f["value"] for f in user["customfields"]} == {"gender": "Male"}
    assert sent_urls and all(url == f"{moodle.base_url}/webservice/rest/server.php" for url in sent_urls)


def test_site_info(moodle, monkeypatch):
    info = hook_for(monkeypatch, moodle.base_url).get_site_info()
    assert "core_user_create_users" in {f["name"] for f in info["functions"]}


@pytest.mark.parametrize(("setup", "error", "message", "calls"), [
    ({"token": "wrong"}, MoodleInvalidTokenError, "Invalid token - token not found", 1),
    ({"expired_token": True}, MoodleInvalidTokenError, "the token has expired", 2),
    ({"web_services_enabled": False}, MoodleWebServicesDisabledError, "HTTP 403", 1),
])
def test_permanent_failures_are_typed_and_not_retried(moodle, monkeypatch, setup, error, message, calls):
    token = setup.pop("token", TOKEN)
    for name, value in setup.items():
        setattr(moodle, name, value)
    hook = hook_for(monkeypatch, moodle.base_url, token=token)
    with pytest.raises(error) as raised:
        hook.get_site_info()
    assert hook.calls_made == calls
    assert message in str(raised.value)
    assert "owner: Moodle administrator" in str(raised.value)


def test_function_missing_from_the_service_is_typed_and_not_retried(monkeypatch):
    with MoodleStandIn(TOKEN, functions=["core_webservice_get_site_info"]) as moodle:
        hook = hook_for(monkeypatch, moodle.base_url)
        with pytest.raises(MoodleFunctionUnavailableError, match="core_user_create_users is not in the token's"):
            hook.call("core_user_create_users", users=[{"username": "a", "createpassword": 1}])
        assert hook.calls_made == 2  # the second call tells a missing function from an expired token


def test_an_unknown_function_is_unavailable_but_a_missing_course_is_refused_data(moodle, monkeypatch):
    hook = hook_for(monkeypatch, moodle.base_url)
    with pytest.raises(MoodleFunctionUnavailableError, match="external_functions"):
        hook.call("local_nothing_here")
    with pytest.raises(MoodleRequestError, match="invalidrecord"):
        hook.call("gradereport_user_get_grade_items", courseid=999)


def test_refused_data_is_a_request_error(moodle, monkeypatch):
    hook = hook_for(monkeypatch, moodle.base_url)
    with pytest.raises(MoodleRequestError):
        hook.call("core_user_create_users", users=[{"username": "UPPER", "firstname": "a", "lastname": "b",
                                                     "email": "a@example.com", "createpassword": 1}])
    assert hook.calls_made == 1


def test_wrong_url_is_not_a_site_and_owned_by_psiber_setup(moodle, monkeypatch):
    hook = hook_for(monkeypatch, moodle.base_url + "/not-moodle")
    with pytest.raises(MoodleNotASiteError, match="owner: PSIber setup"):
        hook.get_site_info()
    assert hook.calls_made == 1


def test_5xx_is_retried_with_backoff_then_succeeds(moodle, monkeypatch):
    moodle.fail_next_requests(2, status=503)
    hook = hook_for(monkeypatch, moodle.base_url)
    assert hook.get_site_info()["sitename"]
    assert hook.calls_made == 3


def test_5xx_that_persists_gives_up_after_max_attempts(moodle, monkeypatch):
    moodle.fail_next_requests(10, status=502)
    hook = hook_for(monkeypatch, moodle.base_url)
    with pytest.raises(MoodleTransientError, match="HTTP 502"):
        hook.get_site_info()
    assert hook.calls_made == hook.max_attempts


def test_timeout_is_transient_and_retried(moodle, monkeypatch):
    moodle.delay_next_requests(1, seconds=1.0)
    hook = hook_for(monkeypatch, moodle.base_url, timeout=0.3)
    assert hook.get_site_info()["sitename"]
    assert hook.calls_made == 2


def test_unreachable_site_is_transient_and_names_it(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hook = hook_for(monkeypatch, f"http://127.0.0.1:{port}")
    with pytest.raises(MoodleUnreachableError, match="cannot connect"):
        hook.get_site_info()
    assert hook.calls_made == hook.max_attempts


def test_the_token_never_reaches_the_logs(moodle, monkeypatch, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    moodle.fail_next_requests(1, status=500)
    hook = hook_for(monkeypatch, moodle.base_url)
    hook.get_site_info()
    with pytest.raises(MoodleInvalidTokenError) as raised:
        hook_for(monkeypatch, moodle.base_url, token=TOKEN[::-1]).get_site_info()
    logged = caplog.text + "".join(capsys.readouterr())
    assert "POST /webservice/rest/server.php" in logged  # the requests were logged, at DEBUG level
    assert "attempt 1 failed (Moodle in core_webservice_get_site_info: HTTP 500" in logged
    assert TOKEN not in logged and TOKEN[::-1] not in logged
    assert TOKEN[::-1] not in str(raised.value)


def test_maintenance_mode_is_transient():
    from moodle.hook import _error_from_moodle

    error = _error_from_moodle({"exception": "moodle_exception", "errorcode": "sitemaintenance",
                                "message": "Site is undergoing maintenance and is currently not available"},
                               "core_webservice_get_site_info")
    assert isinstance(error, MoodleTransientError) and error.transient
