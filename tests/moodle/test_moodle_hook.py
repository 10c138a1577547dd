"""MoodleHook against the Moodle stand-in: encoding, typed errors, retries, the deadline, maintenance mode, and no
token in logs."""

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from airflow.sdk.exceptions import AirflowTaskTimeout
from fault_proxy import FaultProxy

from moodle_provider.exceptions import (
    MoodleAnswerLostError,
    MoodleConnectionLostError,
    MoodleConnectionSettingError,
    MoodleDeadlineError,
    MoodleFunctionUnavailableError,
    MoodleInvalidTokenError,
    MoodleMaintenanceError,
    MoodleNotASiteError,
    MoodleRequestError,
    MoodleSilenceError,
    MoodleTaskTimeout,
    MoodleTransientError,
    MoodleUnreachableError,
    MoodleWebServicesDisabledError,
)
from moodle_provider.hooks.moodle import MoodleHook, is_write
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


def test_a_php_error_without_errorcode_is_an_error_not_an_answer(moodle, monkeypatch):
    """4.5.6 answers get_courses_by_field ids with an unknown id with a caught PHP Error: no errorcode key."""
    hook = hook_for(monkeypatch, moodle.base_url)
    with pytest.raises(MoodleRequestError, match="contextvalidated"):
        hook.call("core_course_get_courses_by_field", field="ids", value="1,99999")


def test_wrong_url_is_not_a_site_and_owned_by_the_integration_setup(moodle, monkeypatch):
    hook = hook_for(monkeypatch, moodle.base_url + "/not-moodle")
    with pytest.raises(MoodleNotASiteError, match=r"owner: integration setup \(the Moodle Connection in Airflow\)"):
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


def test_a_connection_lost_after_the_request_was_sent_says_moodle_may_have_done_the_work(monkeypatch):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def read_then_hang_up():
        for _ in range(MoodleHook.max_attempts):
            connection, _ = server.accept()
            connection.recv(65536)  # the request arrives, then the connection breaks with no answer
            connection.close()

    threading.Thread(target=read_then_hang_up, daemon=True).start()
    hook = hook_for(monkeypatch, f"http://127.0.0.1:{server.getsockname()[1]}")
    with pytest.raises(MoodleConnectionLostError, match="after the request was sent: Moodle may have done the work"):
        hook.get_site_info()
    server.close()


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


# -- the total deadline, maintenance mode, the task's execution_timeout

RECORDINGS = Path(__file__).parent / "recordings"  # copies of ../shared/moodle-contract/85 and 86 (live site)
LAB_FINDINGS = Path(__file__).parents[1] / "moodle_stand_in" / "contract" / "lab_findings"  # live pairs, absolute


@pytest.fixture
def dribbling(moodle):
    with FaultProxy(moodle.base_url) as proxy:
        proxy.dribble = 0.05  # a byte every 50 ms: each read is quick, the answer takes 20 s
        yield proxy


@pytest.mark.parametrize("where", ["body", "headers"])
def test_an_answer_that_dribbles_is_cut_at_the_deadline_and_the_hook_recovers(dribbling, monkeypatch, where):
    dribbling.dribble_in = where
    hook = hook_for(monkeypatch, dribbling.base_url, timeout=5, deadline=0.3)
    hook.max_attempts = 2
    with pytest.raises(MoodleDeadlineError) as raised:
        hook.get_site_info()
    message = str(raised.value)
    assert "no complete answer within the 0.3 s deadline" in message
    assert "core_webservice_get_site_info" in message and "owner: Moodle administrator / IT" in message
    assert TOKEN not in message and raised.value.transient
    assert [e.fault for e in dribbling.exchanges] == ["dribble", "dribble"]  # retried, as transient faults are
    dribbling.dribble = None
    assert hook.get_site_info()["sitename"]  # the cut connection is not reused


def test_the_deadline_defaults_to_two_minutes_and_is_not_sent_as_a_header(moodle, monkeypatch, sent_urls):
    headers = []
    original = requests.Session.send

    def send(self, request, **kwargs):
        headers.append(dict(request.headers))
        return original(self, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", send)
    assert hook_for(monkeypatch, moodle.base_url).deadline == 120
    hook = hook_for(monkeypatch, moodle.base_url, deadline=30)
    hook.get_site_info()
    assert hook.deadline == 30 and headers and not any("deadline" in {k.lower() for k in h} for h in headers)


def test_the_environment_is_read_once_per_hook_and_its_proxy_still_applies(moodle, monkeypatch):
    scans = []
    original = requests.sessions.get_environ_proxies
    monkeypatch.setattr(requests.sessions, "get_environ_proxies", lambda *a, **k: scans.append(a) or original(*a, **k))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a proxy that refuses every connection
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(MoodleUnreachableError):
        hook_for(monkeypatch, moodle.base_url).get_site_info()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    scans.clear()
    hook = hook_for(monkeypatch, moodle.base_url)
    for _ in range(3):
        assert hook.get_site_info()["sitename"]
    assert len(scans) == 1


def test_with_trust_env_false_the_environment_is_not_read(moodle, monkeypatch):
    scans = []
    original = requests.sessions.get_environ_proxies
    monkeypatch.setattr(requests.sessions, "get_environ_proxies", lambda *a, **k: scans.append(a) or original(*a, **k))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would refuse every connection, were it used
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert hook_for(monkeypatch, moodle.base_url, trust_env=False).get_site_info()["sitename"]
    assert scans == []


def test_the_connection_is_looked_up_once_per_hook(moodle, monkeypatch):
    looked_up = []
    original = MoodleHook.get_connection.__func__
    monkeypatch.setattr(MoodleHook, "get_connection",
                        classmethod(lambda cls, conn_id: looked_up.append(conn_id) or original(cls, conn_id)))
    hook = hook_for(monkeypatch, moodle.base_url, deadline=30)
    for _ in range(3):
        hook.get_site_info()
    assert looked_up == ["moodle_test", "moodle_test"]  # the HTTP provider's session, then token and deadline


def test_one_thread_keeps_the_deadlines_of_all_calls_and_a_slow_call_is_still_cut(dribbling, monkeypatch):
    hook = hook_for(monkeypatch, dribbling.base_url, timeout=5, deadline=0.3)
    hook.max_attempts = 1
    dribbling.dribble = None
    for _ in range(5):
        hook.get_site_info()
    assert [t.name for t in threading.enumerate()].count("moodle-call-deadlines") == 1
    dribbling.dribble = 0.05
    with pytest.raises(MoodleDeadlineError):
        hook.get_site_info()


@pytest.mark.parametrize("deadline", ["soon", 0, -5, True])
def test_a_deadline_that_is_not_a_positive_number_names_the_connection(moodle, monkeypatch, deadline):
    hook = hook_for(monkeypatch, moodle.base_url, deadline=deadline)
    with pytest.raises(MoodleConnectionSettingError) as raised:
        hook.get_site_info()
    assert "connection 'moodle_test': Extra \"deadline\" must be a number of seconds above 0" in str(raised.value)
    assert "owner: integration setup (the Moodle Connection in Airflow)" in str(raised.value) and hook.calls_made == 0


class _Replay(ThreadingHTTPServer):
    """Answers each request with the next (status, body) of ``answers``, the last one for ever."""

    def __init__(self, answers: list[tuple[int, bytes]]):
        super().__init__(("127.0.0.1", 0), _ReplayHandler)
        self.answers = answers
        self.requests = 0
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ReplayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server = self.server
        status, body = server.answers[min(server.requests, len(server.answers) - 1)]
        server.requests += 1
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def recorded_answer(name: str) -> tuple[int, bytes]:
    response = json.loads((RECORDINGS / name).read_text())["response"]
    body = response["body"]
    return response["status"], (body if isinstance(body, str) else json.dumps(body)).encode()


@pytest.mark.parametrize(("recording", "shown"), [
    ("85-maintenance-mode.json", "site in maintenance mode: The site is undergoing maintenance"),
    ("86-cli-maintenance-mode.json", "site in maintenance mode (HTTP 503: 'Upgrade in progress')"),
    (LAB_FINDINGS / "03-cli-maintenance-page-message.json", "site in maintenance mode (HTTP 503: 'Moodle under "
     "maintenance The site is undergoing maintenance and is currently not available')"),  # its <style> not quoted
])
def test_maintenance_mode_is_named_transient_and_retried_until_the_site_is_back(monkeypatch, recording, shown):
    site_info = (200, json.dumps({"sitename": "Back", "functions": []}).encode())
    with _Replay([recorded_answer(recording)] * 2 + [site_info]) as site:
        assert hook_for(monkeypatch, site.base_url).get_site_info()["sitename"] == "Back"
        assert site.requests == 3
    with _Replay([recorded_answer(recording)]) as site:
        hook = hook_for(monkeypatch, site.base_url)
        with pytest.raises(MoodleMaintenanceError) as raised:
            hook.get_site_info()
        assert site.requests == hook.max_attempts
    assert raised.value.transient and shown in str(raised.value)
    assert str(raised.value).endswith("(owner: Moodle administrator)")


def test_a_5xx_that_is_not_maintenance_is_not_called_maintenance(monkeypatch):
    with _Replay([(503, b"<h1>Service Unavailable</h1>")]) as site:
        with pytest.raises(MoodleTransientError) as raised:
            hook_for(monkeypatch, site.base_url).get_site_info()
    assert not isinstance(raised.value, MoodleMaintenanceError) and "HTTP 503 from the site" in str(raised.value)


def test_the_tasks_execution_timeout_during_a_call_names_the_function_and_stays_a_task_timeout(moodle, monkeypatch):
    from airflow.sdk.execution_time.timeout import timeout

    with FaultProxy(moodle.base_url, rate=1.0, kinds=("late",)) as proxy:
        hook = hook_for(monkeypatch, proxy.base_url, timeout=30)
        with pytest.raises(AirflowTaskTimeout) as raised, timeout(0.5):
            hook.call("core_course_get_courses")
    assert isinstance(raised.value, MoodleTaskTimeout)
    assert str(raised.value) == ("execution_timeout passed while waiting for Moodle's core_course_get_courses "
                                 "(owner: Moodle administrator / IT (network))")


# -- writes are never sent again once they may have run

WRITE = ("core_course_delete_courses", {"courseids": [2]})


@pytest.mark.parametrize("fault", ["late", "reset", "5xx"])
def test_a_write_whose_answer_is_lost_is_not_sent_again_but_a_read_is(moodle, monkeypatch, fault):
    """Late (the client's timeout fires first), reset after Moodle worked, 5xx: Moodle may have done the work."""
    with FaultProxy(moodle.base_url, rate=1.0, kinds=(fault,)) as proxy:
        hook = hook_for(monkeypatch, proxy.base_url, timeout=0.3)
        with pytest.raises(MoodleAnswerLostError) as raised:
            hook.call(*WRITE[:1], **WRITE[1])
        assert [e.wsfunction for e in proxy.exchanges] == ["core_course_delete_courses"]
        assert raised.value.transient and "core_course_delete_courses" in str(raised.value)
        proxy.exchanges.clear()
        with pytest.raises(MoodleAnswerLostError):
            hook.call("core_course_get_courses")
        assert len(proxy.exchanges) == hook.max_attempts


def test_a_slow_write_past_the_timeout_has_done_its_work_and_is_sent_once(moodle, monkeypatch):
    course = moodle.add_course("OLD", categoryid=moodle.add_category("Old")["id"])["id"]
    moodle.delay_next_requests(1, seconds=1.0)  # processed at once, answered after the client's 0.3 s
    hook = hook_for(monkeypatch, moodle.base_url, timeout=0.3)
    with pytest.raises(MoodleSilenceError, match="no answer within 0.3 s: Moodle may have done the work"):
        hook.call("core_course_delete_courses", courseids=[course])
    assert hook.calls_made == 1 and course not in moodle.courses


def test_a_write_is_asked_again_only_after_faults_that_kept_it_from_running(monkeypatch):
    refused = (429, b"Too many requests")
    done = (200, json.dumps({"warnings": []}).encode())
    for answers in ([recorded_answer("85-maintenance-mode.json")] * 2 + [done],
                    [recorded_answer("86-cli-maintenance-mode.json")] * 2 + [done], [refused, refused, done]):
        with _Replay(answers) as site:
            assert hook_for(monkeypatch, site.base_url).call(*WRITE[:1], **WRITE[1]) == {"warnings": []}
            assert site.requests == 3
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hook = hook_for(monkeypatch, f"http://127.0.0.1:{port}")
    with pytest.raises(MoodleUnreachableError):
        hook.call(*WRITE[:1], **WRITE[1])
    assert hook.calls_made == hook.max_attempts  # never connected: nothing ran


@pytest.mark.parametrize(("wsfunction", "write"), [
    ("core_webservice_get_site_info", False), ("core_user_get_users_by_field", False),
    ("core_course_get_courses", False), ("core_enrol_get_enrolled_users", False),
    ("gradereport_user_get_grade_items", False), ("mod_quiz_get_quizzes_by_courses", False),
    ("core_course_search_courses", False), ("core_course_view_course", False),
    ("core_user_create_users", True), ("core_user_update_users", True), ("core_user_delete_users", True),
    ("core_course_create_courses", True), ("core_course_update_courses", True), ("core_course_delete_courses", True),
    ("enrol_manual_enrol_users", True), ("enrol_manual_unenrol_users", True), ("core_role_unassign_roles", True),
    ("core_reportbuilder_retrieve_report", False), ("core_reportbuilder_list_reports", False),
    ("core_reportbuilder_set_filters", False), ("core_reportbuilder_filters_reset", False),
])
def test_writes_are_every_function_but_the_get_search_and_view_ones(wsfunction, write):
    """Report Builder's retrieve/list read; its filter calls store the same preference when sent twice."""
    assert is_write(wsfunction) is write
