"""Talks to one Moodle site through its REST web-service protocol."""

from __future__ import annotations

import html
import json
import re
from functools import cached_property
from typing import Any

import requests
import tenacity
from airflow.providers.http.hooks.http import HttpHook
from airflow.sdk.exceptions import AirflowTaskTimeout
from requests import PreparedRequest, Request
from requests.utils import get_netrc_auth
from urllib3.exceptions import NameResolutionError, NewConnectionError, ProxyError

from moodle_provider.deadline import CallDeadline, DeadlineAdapter
from moodle_provider.exceptions import (
    MoodleAnswerLostError,
    MoodleConnectionLostError,
    MoodleConnectionSettingError,
    MoodleDeadlineError,
    MoodleError,
    MoodleFunctionUnavailableError,
    MoodleInvalidTokenError,
    MoodleMaintenanceError,
    MoodleNotASiteError,
    MoodleReportAccessError,
    MoodleReportMissingError,
    MoodleRequestError,
    MoodleServerError,
    MoodleSilenceError,
    MoodleTaskTimeout,
    MoodleTransientError,
    MoodleUnreachableError,
    MoodleWebServicesDisabledError,
)
from moodle_provider.form_encoding import flatten_params
from moodle_provider.functions import FUNCTIONS, SITE_INFO, is_write
from moodle_provider.get_provider_info import (
    CONN_TYPE,
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUT,
    EXTRA_FIELDS,
    HIDDEN_FIELDS,
    HOOK_NAME,
    PLACEHOLDERS,
    RELABELING,
)

REST_ENDPOINT = "webservice/rest/server.php"

_TOKEN_ERRORS = {"invalidtoken", "invalidtimedtoken", "invalidiptoken"}
_ACCESS_ERROR = "accessexception"
_FUNCTION_ERRORS = {_ACCESS_ERROR, "servicenotavailable"}
# Any missing database row is "invalidrecord"; only a missing external_functions row means an unknown function.
_MISSING_RECORD = "invalidrecord"
_DISABLED_ERRORS = {"enablewsdescription", "webservicesnotenabled", "wsdisabled"}
_REPORT_ACCESS_ERROR = "errorreportview"  # Report Builder: not in the report's audience, or no reportbuilder:view
_REPORT_TABLE = "reportbuilder_report"
_MAINTENANCE_ERROR = "sitemaintenance"  # Site administration > Maintenance mode: worth asking again later
_MAINTENANCE = "site in maintenance mode"
# CLI maintenance (upgrades) answers every request with HTTP 503 "Moodle under maintenance" and an HTML page.
_MAINTENANCE_PAGE = re.compile(r"maintenance|upgrad", re.IGNORECASE)
_NOT_SHOWN = re.compile(r"<(head|style|script)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)

class MoodleHook(HttpHook):
    """Calls Moodle web-service functions with a token kept in an Airflow Connection.

    Connection fields (type ``moodle``; an ``http`` Connection with the same fields works too):

    * **Moodle site URL** (Host): the site's base URL, e.g. ``https://moodle.example.com`` (a sub-path such as
      ``https://example.com/moodle`` works too).
    * **Web service token** (Password): the token issued in Moodle (Site administration > Server >
      Web services > Manage tokens). It is sent in the POST body only, never in a URL.
    * **Timeout** and **Deadline** (form fields, kept in Extra as ``{"timeout": 60, "deadline": 120}``).
      ``timeout``: seconds the site may stay silent (to connect, or between two reads of its answer).
      ``deadline``: seconds each request (each try of a call) may take in all, connecting and the whole
      answer included, so a site that trickles its answer a byte at a time cannot hold a task for
      ever. Other HTTP options in Extra as in the HTTP provider (``verify``, ``proxies``), among them
      ``"trust_env": false``: the environment's proxies, CA bundle and ``.netrc`` are then not read
      (each task's hook otherwise reads them once, for a few milliseconds); use it when the site is
      reached without a proxy from the environment.

    Transient faults (timeouts, the deadline, 5xx, resets, refused connections, maintenance
    mode, 429) are retried ``max_attempts`` times in all, with exponential backoff; a bad token, a
    missing function or a wrong URL fail at once.

    A write (:func:`is_write`: any function but the get/search/view/list/retrieve ones and Report Builder's filter
    calls, which store the same preference when sent twice) is asked again only after a
    fault that certainly kept it from running: no connection made, maintenance mode, HTTP 429. Once the
    request may have reached Moodle (silence past ``timeout`` after sending, a connection broken after
    sending, the deadline, HTTP 5xx) its answer is lost but Moodle may have done the work, perhaps slowly:
    on a live site ``core_course_delete_courses`` of 32 courses answered after 61.8 s, and the same call
    sent again answered that none of them existed. So the hook raises
    :class:`~moodle_provider.exceptions.MoodleAnswerLostError` at once and the step reads back what Moodle now
    holds before it sends anything again (``sync_common.read_back``). Calls that may run long are sized by
    their steps to answer well within the timeout (course deletions: a few courses a call).
    """

    conn_name_attr = "moodle_conn_id"
    default_conn_name = "moodle_default"
    conn_type = CONN_TYPE
    hook_name = HOOK_NAME

    max_attempts = 4
    backoff_seconds = 2.0
    default_timeout = float(DEFAULT_TIMEOUT)
    default_deadline = float(DEFAULT_DEADLINE)

    def __init__(
        self,
        moodle_conn_id: str = default_conn_name,
        *,
        max_attempts: int | None = None,
        backoff_seconds: float | None = None,
        default_timeout: float | None = None,
    ) -> None:
        super().__init__(method="POST", http_conn_id=moodle_conn_id,
                         adapter=DeadlineAdapter(idle=120, count=20, interval=30))
        self.moodle_conn_id = moodle_conn_id
        if max_attempts is not None:
            self.max_attempts = max_attempts
        if backoff_seconds is not None:
            self.backoff_seconds = backoff_seconds
        if default_timeout is not None:
            self.default_timeout = default_timeout
        self.calls_made = 0

    @cached_property
    def _session(self) -> requests.Session:
        session = self.get_conn()
        session.headers.pop("deadline", None)  # the HTTP provider sends unknown Extra keys as headers
        if session.trust_env:  # the environment (proxies, CA bundle, netrc) is read once, not on every call
            settings = session.merge_environment_settings(self._endpoint, dict(session.proxies), session.stream,
                                                          session.verify, session.cert)
            session.proxies, session.verify = settings["proxies"], settings["verify"]
            session.auth = session.auth or get_netrc_auth(self._endpoint)
            session.trust_env = False
        return session

    @cached_property
    def _endpoint(self) -> str:
        return self.url_from_endpoint(REST_ENDPOINT)

    @cached_property
    def _request(self) -> PreparedRequest:
        """The POST every call sends, prepared once (headers, auth, cookies); a call adds its body to a copy."""
        return self._session.prepare_request(Request("POST", self._endpoint))

    @cached_property
    def _connection(self):
        """The Connection, looked up once for the token and the deadline (a worker asks Airflow's API for it)."""
        return self.get_connection(self.moodle_conn_id)

    @cached_property
    def deadline(self) -> float:
        """Seconds one request may take in all (Extra ``deadline``)."""
        value = self._connection.extra_dejson.get("deadline")
        if value is None:  # left empty in the form
            value = self.default_deadline
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise MoodleConnectionSettingError(
                f"connection '{self.moodle_conn_id}': Extra \"deadline\" must be a number of seconds above 0, "
                f"not {value!r}")
        return float(value)

    @cached_property
    def _token(self) -> str:
        token = self._connection.password
        if not token:
            raise MoodleInvalidTokenError(
                f"connection '{self.moodle_conn_id}' has no token in its Password field"
            )
        return token

    def call(self, wsfunction: str, **params: Any) -> Any:
        """Call one web-service function and return its decoded JSON answer.

        Nested ``params`` (lists of dicts) are form-encoded the way Moodle expects.
        Raises a :class:`~moodle_provider.exceptions.MoodleError` subclass on any failure.
        """
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=tenacity.wait_exponential(multiplier=self.backoff_seconds, max=60),
            retry=tenacity.retry_if_exception(lambda error: _worth_asking_again(error, wsfunction)),
            before_sleep=lambda state: self.log.warning(
                "Moodle %s attempt %d failed (%s); retrying", wsfunction, state.attempt_number,
                state.outcome.exception() if state.outcome else None,
            ),
            reraise=True,
        )
        try:
            return retrying(self._call_once, wsfunction, params)
        except MoodleTaskTimeout:
            raise
        except AirflowTaskTimeout as timeout:
            raise MoodleTaskTimeout(wsfunction) from timeout

    def get_site_info(self) -> dict[str, Any]:
        return self.call(SITE_INFO)

    def list_reports(self, page: int = 0, perpage: int = 0) -> list[dict[str, Any]]:
        """The Report Builder custom reports the token's user may view (perpage 0: all of them)."""
        return self.call("core_reportbuilder_list_reports", page=page, perpage=perpage)["reports"]

    def retrieve_report(self, report_id: int, page: int = 0, perpage: int = 0) -> dict[str, Any]:
        """One page of a custom report: Moodle's whole answer (``details``, ``data`` with ``headers``, ``rows``
        of display strings and ``totalrowcount``, ``warnings``). ``perpage`` 0 is every row in one answer.

        Raises :class:`MoodleReportMissingError` or :class:`MoodleReportAccessError` for a report that is not
        there or not shared with the token's user."""
        return self.call("core_reportbuilder_retrieve_report", reportid=report_id, page=page, perpage=perpage)

    def set_report_filters(self, report_id: int, values: dict[str, Any]) -> bool:
        """Set the report's filters (its filter form's fields, e.g. ``completion:timecompleted_operator``) for
        later retrievals. Moodle stores them per token user and report: readers sharing a token must not set
        different ones at the same time."""
        return bool(self.call("core_reportbuilder_set_filters", reportid=report_id, values=json.dumps(values)))

    def reset_report_filters(self, report_id: int) -> bool:
        """Clear the token user's filters of the report."""
        return bool(self.call("core_reportbuilder_filters_reset", reportid=report_id))

    def test_connection(self) -> tuple[bool, str]:
        """The Connection form's Test button: the site's name and release, or why this Connection cannot serve
        the integrations (asked once, without the retries of a task)."""
        try:
            info = self._call_once(SITE_INFO, {})
        except MoodleError as error:
            reason = next(reason for kind, reason in _TEST_FAILURES if isinstance(error, kind))
            return False, f"{reason}: {error}"
        offered = {function["name"] for function in info.get("functions", [])}
        site = f"{info.get('sitename')}, Moodle {info.get('release')}"
        missing = [function for function in FUNCTIONS
                   if function.name not in offered and not function.optional and not function.on_request]
        if missing:
            lacking = "; ".join(f"{function.name} (flows {', '.join(function.flows)})" for function in missing)
            return False, (f"{site}: the token's external service lacks {lacking}. Add them under Site "
                           "administration > Server > Web services > External services > Functions")
        return True, site

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The form's Extra fields for Airflow before 3.2; later versions read them from ``get_provider_info``."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import IntegerField
        from wtforms.validators import NumberRange, Optional

        return {name: IntegerField(lazy_gettext(label), description=description, default=default,
                                   validators=[Optional(), NumberRange(min=1)], widget=BS3TextFieldWidget())
                for name, (label, description, default) in EXTRA_FIELDS.items()}

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden, relabelled and pre-filled standard fields, for Airflow before 3.2 (as the widgets above)."""
        return {"hidden_fields": list(HIDDEN_FIELDS), "relabeling": dict(RELABELING),
                "placeholders": dict(PLACEHOLDERS)}

    def run(self, *args: Any, **kwargs: Any) -> Any:
        raise _generic_request_refused("run")

    def run_with_advanced_retry(self, *args: Any, **kwargs: Any) -> Any:
        raise _generic_request_refused("run_with_advanced_retry")

    def run_and_check(self, *args: Any, **kwargs: Any) -> Any:
        raise _generic_request_refused("run_and_check")

    def _call_once(self, wsfunction: str, params: dict[str, Any]) -> Any:
        try:
            return self._post(wsfunction, params)
        except MoodleFunctionUnavailableError as error:
            if error.errorcode != _ACCESS_ERROR:
                raise
            # Moodle answers an expired token with the same access exception as a function
            # missing from the service, and deletes the token: asking again tells them apart.
            # Nothing ran the first time, so asking again is safe even for writes.
            try:
                self._post(wsfunction, params)
            except MoodleInvalidTokenError:
                raise MoodleInvalidTokenError(
                    "the token has expired (Moodle has now deleted it); issue a new one", errorcode="expiredtoken",
                    wsfunction=wsfunction) from None
            except MoodleFunctionUnavailableError:
                pass
            raise MoodleFunctionUnavailableError(
                f"{wsfunction} is not in the token's external service (Access control exception)",
                errorcode=_ACCESS_ERROR, wsfunction=wsfunction) from None

    def _post(self, wsfunction: str, params: dict[str, Any]) -> Any:
        body = [("wstoken", self._token), ("wsfunction", wsfunction), ("moodlewsrestformat", "json")]
        body += flatten_params(params)
        session = self._session
        request = self._request.copy()
        request.prepare_body(data=body, files=None)
        options = {"timeout": self.default_timeout, **self.merged_extra, "check_response": False}
        silence = options["timeout"]
        options["timeout"] = (min(silence[0], self.deadline), silence[1]) if isinstance(silence, list | tuple) \
            else (min(silence, self.deadline), silence)
        self.calls_made += 1
        with CallDeadline(self.deadline) as deadline:
            try:
                answer = self._decode(HttpHook.run_and_check(self, session, request, options), wsfunction)
            except requests.ConnectTimeout as error:  # no connection made: nothing was sent
                raise self._cut_by(deadline, wsfunction) or MoodleUnreachableError(
                    f"cannot connect to {self.base_url} within {silence} s", wsfunction=wsfunction) from error
            except requests.Timeout as error:
                raise self._cut_by(deadline, wsfunction) or MoodleSilenceError(
                    f"no answer within {silence} s: Moodle may have done the work", wsfunction=wsfunction) from error
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
                if _never_connected(error):
                    raise self._cut_by(deadline, wsfunction) or MoodleUnreachableError(
                        f"cannot connect to {self.base_url} ({type(error).__name__})", wsfunction=wsfunction
                    ) from error
                raise self._cut_by(deadline, wsfunction) or MoodleConnectionLostError(
                    "the connection broke after the request was sent: Moodle may have done the work",
                    wsfunction=wsfunction) from error
            except MoodleError as error:  # an answer cut short can look like anything
                if deadline.expired:
                    raise self._past_deadline(wsfunction) from error
                raise
        if deadline.expired:  # cut while the answer was still coming: what was read may be a part only
            raise self._past_deadline(wsfunction)
        return answer

    def _cut_by(self, deadline: CallDeadline, wsfunction: str) -> MoodleDeadlineError | None:
        return self._past_deadline(wsfunction) if deadline.expired else None

    def _past_deadline(self, wsfunction: str) -> MoodleDeadlineError:
        return MoodleDeadlineError(
            f"no complete answer within the {self.deadline:g} s deadline: the site is stuck or overloaded "
            f"(Extra \"deadline\" of connection '{self.moodle_conn_id}')", wsfunction=wsfunction)

    def _decode(self, response: requests.Response, wsfunction: str) -> Any:
        status = response.status_code
        if status == 503 and _is_maintenance_page(response):
            raise MoodleMaintenanceError(f"{_MAINTENANCE} (HTTP 503: {_page_text(response.text)!r})",
                                         wsfunction=wsfunction)
        if status >= 500:
            raise MoodleServerError(f"HTTP {status} from the site", wsfunction=wsfunction)
        if status == 429:  # refused before it ran: too many requests
            raise MoodleTransientError(f"HTTP {status} from the site", wsfunction=wsfunction)
        if status == 403:
            raise MoodleWebServicesDisabledError(
                "HTTP 403: web services or the REST protocol are disabled on the site", wsfunction=wsfunction
            )
        if status != 200:
            raise MoodleNotASiteError(
                f"HTTP {status} at {self.base_url}/{REST_ENDPOINT}: is the URL the Moodle site's?",
                wsfunction=wsfunction,
            )
        try:
            answer = response.json()
        except (ValueError, json.JSONDecodeError):
            raise MoodleNotASiteError(
                f"{self.base_url} answered with something that is not Moodle's JSON: is the URL right?",
                wsfunction=wsfunction,
            ) from None
        if isinstance(answer, dict) and "exception" in answer and ("errorcode" in answer or "message" in answer):
            raise _error_from_moodle(answer, wsfunction)  # a PHP Error the service caught has no errorcode
        return answer


_TEST_FAILURES = (  # the Test button's reason for each failure, first match
    (MoodleInvalidTokenError, "Bad web service token"),
    (MoodleWebServicesDisabledError, "Web services are off"),
    (MoodleNotASiteError, "Not a Moodle site"),
    (MoodleFunctionUnavailableError, f"{SITE_INFO} is not in the token's external service"),
    (MoodleConnectionSettingError, "A setting of this Connection cannot be used"),
    (MoodleMaintenanceError, "The site is in maintenance mode"),
    (MoodleUnreachableError, "The site cannot be reached"),
    (MoodleAnswerLostError, "The site did not answer in time"),
    (MoodleError, "Moodle refused the request"),
)


def _generic_request_refused(method: str) -> NotImplementedError:
    """The HTTP hook's generic requests would send no token and raise no typed Moodle error."""
    return NotImplementedError(
        f"MoodleHook.{method}() is not available: call a web-service function with "
        "MoodleHook.call(wsfunction, **params), which sends the token and raises typed Moodle errors")


def _worth_asking_again(error: BaseException, wsfunction: str) -> bool:
    """A transient fault is asked again, unless it is a write that may have run (its answer lost)."""
    if not isinstance(error, MoodleError) or not error.transient:
        return False
    return not (isinstance(error, MoodleAnswerLostError) and is_write(wsfunction))


def _never_connected(error: requests.RequestException) -> bool:
    """Whether the request never reached the site (no connection made), as opposed to a connection
    that broke once the request was on its way."""
    reason = getattr(error.args[0] if error.args else None, "reason", None)
    if isinstance(reason, ProxyError):  # the proxy of the environment could not be reached
        reason = reason.original_error
    return isinstance(reason, NewConnectionError | NameResolutionError)


def _error_from_moodle(answer: dict[str, Any], wsfunction: str) -> MoodleError:
    code = str(answer.get("errorcode", ""))
    message = str(answer.get("message", ""))
    if code in _TOKEN_ERRORS:
        kind: type[MoodleError] = MoodleInvalidTokenError
    elif code in _FUNCTION_ERRORS or (code == _MISSING_RECORD and "external_functions" in message):
        kind = MoodleFunctionUnavailableError
    elif code in _DISABLED_ERRORS:
        kind = MoodleWebServicesDisabledError
    elif code == _REPORT_ACCESS_ERROR:
        kind = MoodleReportAccessError
    elif code == _MISSING_RECORD and _REPORT_TABLE in message:
        kind = MoodleReportMissingError
    elif code == _MAINTENANCE_ERROR:
        kind, message = MoodleMaintenanceError, f"{_MAINTENANCE}: {message}"
    else:
        kind = MoodleRequestError
    debuginfo = answer.get("debuginfo")
    return kind(message, errorcode=code, wsfunction=wsfunction, debuginfo=str(debuginfo) if debuginfo else None)


def _is_maintenance_page(response: requests.Response) -> bool:
    return bool(_MAINTENANCE_PAGE.search(response.reason or "") or _MAINTENANCE_PAGE.search(response.text))


def _page_text(page: str) -> str:
    """The words an HTML page shows, short enough for a log line: not its head, styles or scripts (4.5's
    maintenance page starts with a <style> block)."""
    shown = _NOT_SHOWN.sub(" ", page)
    return " ".join(html.unescape(re.sub(r"<[^>]*>", " ", shown)).split())[:160]
