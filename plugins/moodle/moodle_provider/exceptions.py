"""Typed Moodle failures, each naming who must act (the seed's "Points of Failure" table)."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowTaskTimeout

OWNER_MOODLE = "Moodle administrator"
OWNER_MOODLE_IT = "Moodle administrator / IT (network)"
OWNER_CONNECTION = "integration setup (the Moodle Connection in Airflow)"


class MoodleError(Exception):
    """A failed Moodle web-service call.

    ``transient`` failures (timeouts, 5xx, resets) are worth retrying; the others are not.
    """

    transient = False
    owner = OWNER_MOODLE

    def __init__(self, message: str, *, errorcode: str | None = None, wsfunction: str | None = None,
                 debuginfo: str | None = None):
        self.errorcode = errorcode
        self.wsfunction = wsfunction
        self.moodle_message = message
        self.debuginfo = debuginfo  # only sent by sites with debugging on; may name the bad value
        where = f" in {wsfunction}" if wsfunction else ""
        code = f" [{errorcode}]" if errorcode else ""
        super().__init__(f"Moodle{where}{code}: {message} (owner: {self.owner})")


class MoodleTransientError(MoodleError):
    """Timeout, 5xx or reset: Moodle may answer if asked again later."""

    transient = True
    owner = OWNER_MOODLE_IT


class MoodleUnreachableError(MoodleTransientError):
    """Nothing answered at the configured URL (down, firewalled or not public)."""


class MoodleAnswerLostError(MoodleTransientError):
    """The request may have reached Moodle but its answer was lost or came too late (silence past the timeout,
    a connection broken after sending, the deadline, HTTP 5xx): Moodle may have done the work, or may still be
    doing it. The hook asks again only for a read; a write's step reads back what Moodle now holds before it
    sends anything again."""


class MoodleSilenceError(MoodleAnswerLostError):
    """The site stayed silent past the timeout once the request was sent (Moodle answers only when it is done)."""


class MoodleConnectionLostError(MoodleAnswerLostError):
    """The connection broke after the request was sent: Moodle may have done the work, so a write is
    checked against what Moodle holds before it is sent again."""


class MoodleServerError(MoodleAnswerLostError):
    """HTTP 5xx (not maintenance): the site, or a proxy before it, failed while or after Moodle worked."""


class MoodleDeadlineError(MoodleAnswerLostError):
    """The whole exchange (connect, request, answer) outlasted the call's deadline: a stuck or
    overloaded site that still trickles bytes, which no per-read timeout would ever cut."""


class MoodleMaintenanceError(MoodleTransientError):
    """The site is in maintenance mode (set by an administrator, or the CLI mode of an upgrade)."""

    owner = OWNER_MOODLE


class MoodleTaskTimeout(AirflowTaskTimeout):
    """The task's ``execution_timeout`` passed while it waited for Moodle.

    Still an :class:`AirflowTaskTimeout`, so Airflow handles it as one (retries included).
    """

    owner = OWNER_MOODLE_IT

    def __init__(self, wsfunction: str):
        self.wsfunction = wsfunction
        super().__init__(f"execution_timeout passed while waiting for Moodle's {wsfunction} "
                         f"(owner: {self.owner})")


class MoodleInvalidTokenError(MoodleError):
    """Token unknown, expired or restricted to other addresses."""


class MoodleFunctionUnavailableError(MoodleError):
    """The function is not in the token's external service (or the site does not have it)."""


class MoodleWebServicesDisabledError(MoodleError):
    """Web services or the REST protocol are switched off on the site."""


class MoodleConnectionSettingError(MoodleError):
    """A setting of the Moodle Airflow Connection that cannot be used."""

    owner = OWNER_CONNECTION


class MoodleNotASiteError(MoodleError):
    """The URL answers, but not like a Moodle web-service endpoint: the URL is probably wrong."""

    owner = OWNER_CONNECTION


class MoodleRequestError(MoodleError):
    """Moodle refused the request's data (invalid parameter, duplicate, …)."""


class MoodleReportMissingError(MoodleRequestError):
    """A Report Builder custom report the integration is configured to read does not exist (deleted, or the id
    in the integration's settings is wrong)."""


class MoodleReportAccessError(MoodleRequestError):
    """The token's user may not view the custom report: not in any of its audiences, or without the capability
    ``moodle/reportbuilder:view``."""
