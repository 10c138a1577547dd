"""Moodle's refusals of records: whether a refusal is the site's or one record's, and the quarantine of a record
Moodle refused, shared by every integration kind.

The site or the record (``RefusalStreak``): Moodle answers a refusal of one record's data and a failure of the
site (its database refusing every insert, a disk full) with the same error codes, say ``dmlwriteexception``
"Error writing to database" for a username taken and for a database that writes nothing
(``SITE_OR_RECORD_ERRORS``; a refusal Moodle gives only after checking the record, such as ``invalidparameter``,
is always the record's). The one rule: when ``SITE_REFUSAL_STREAK`` records in a row, each sent on its own (the
batch split down to it) or refused on its own in a per-item answer, are refused with the same one of those error
codes and the same message, and no record of the step was accepted in between, the site refuses, not the
records. The step then stops with ``SiteRefusesWritesError`` (owner: the
Moodle administrator, quoting what Moodle said); none of those records is blamed or quarantined, and the next
run sends them again. A refusal is held until the next record is accepted, a different refusal comes or the step
ends; only then is the record blamed. Fewer records than the streak (a site refusing a night's single new
account) cannot be told from bad records and are blamed; so are as many genuinely bad records in a row refused
word for word alike (rare: validation catches the values too long for Moodle's columns before sending), which
stop the step instead until one is corrected.

Quarantine (``quarantined`` and ``fingerprint``): a record Moodle refused is remembered with a fingerprint of
what was sent and is not sent again while it is unchanged, until ``retry_refused_after_days`` have passed or a
run is triggered with ``retry_refused=true``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta

from sync_common.errors import PermanentStepError
from sync_common.outcomes import OWNER_MOODLE_ADMIN, Outcome

SITE_REFUSAL_STREAK = 3
# Moodle's answers to a record's data that a failing site gives for every record alike.
SITE_OR_RECORD_ERRORS = frozenset({"dmlwriteexception"})


class SiteRefusesWritesError(PermanentStepError):
    """Moodle refuses writes for a reason of the site's (its database, a capability, a password policy):
    sending more records cannot help, and no record is to blame."""


def site_refusal(error: Exception, what: str = "write these records") -> SiteRefusesWritesError:
    """Moodle refused a write with an answer that concerns the site, not the records sent (a capability, a
    setting): no record would pass, so nothing more is sent."""
    return SiteRefusesWritesError(
        f"Moodle refused to {what} for a reason of the site's, not of the records ({error}); nothing more was "
        f"sent (owner: {OWNER_MOODLE_ADMIN})")


def refused_alike(count: int, errorcode: str | None, message: str, what: str) -> SiteRefusesWritesError:
    return SiteRefusesWritesError(
        f"Moodle refused to {what} for the first {count} records it was sent one by one, each with the same "
        f"answer ({errorcode}: {message}), and took none in between: a problem of the site (its database, its "
        f"settings), not of the records. Nothing more was sent, no record was quarantined, and the next run sends "
        f"them again once the site writes (owner: {OWNER_MOODLE_ADMIN})")


class RefusalStreak:
    """The rule of this module's docstring for one step: feed it every record Moodle refused on its own
    (``refused``, with what blames the record) and every record it took (``accepted``), in the order sent; use
    it as a context manager, so that refusals still held when the step ends are blamed."""

    def __init__(self, what: str, site_error: Callable[[int, str | None, str], Exception] | None = None,
                 length: int = SITE_REFUSAL_STREAK):
        self.what, self.length = what, length
        self.site_error = site_error or (lambda count, code, message: refused_alike(count, code, message, self.what))
        self._held: list[Callable[[], None]] = []
        self._answer: tuple[str | None, str] | None = None
        self.refusals = 0  # how many it was fed: a call answered with none took all it was sent

    def refused(self, errorcode: str | None, message: str, blame: Callable[[], None]) -> None:
        self.refusals += 1
        if self._answer != (errorcode, message):
            self.release()
        if errorcode not in SITE_OR_RECORD_ERRORS:
            blame()
            return
        self._answer = (errorcode, message)
        self._held.append(blame)
        if len(self._held) >= self.length:
            count = len(self._held)
            self._held.clear()
            raise self.site_error(count, errorcode, message)

    def accepted(self) -> None:
        self.release()

    def release(self) -> None:
        """Blame the records held: they were refused, and the site took others or refused differently."""
        held, self._held, self._answer = self._held, [], None
        for blame in held:
            blame()

    def __enter__(self) -> RefusalStreak:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if not isinstance(error, SiteRefusesWritesError):
            self.release()


def fingerprint(entry: Mapping, leave_out: Iterable[str] = ()) -> str:
    """A hash of what is sent to Moodle for a record (never a password): a refused record is sent again only
    once it changes."""
    sent = {key: value for key, value in entry.items() if key not in set(leave_out)}
    return hashlib.sha256(json.dumps(sent, sort_keys=True, default=str).encode()).hexdigest()


def quarantined(refusals: Iterable[Mapping], retry_after_days: int, now: datetime | None = None) -> dict[str, dict]:
    """Refusals still in quarantine (refused less than ``retry_after_days`` ago), by record key."""
    cutoff = (now or datetime.now(UTC).replace(tzinfo=None)) - timedelta(days=retry_after_days)
    return {str(row["record_key"]): dict(row) for row in refusals
            if _naive(row["last_refused_at"]) > cutoff}


def _naive(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=None) if value.tzinfo else value


def quarantine_outcome(record: str, refusal: Mapping, flow: str) -> Outcome:
    """The outcome of a record not sent because Moodle refused it, unchanged, before."""
    return Outcome(record, "quarantined",
                   f"not sent again: Moodle refused it on {str(refusal['first_refused_at'])[:10]} "
                   f"({refusal['reason']}); it is sent again when it changes, after the integration's "
                   "retry_refused_after_days, or in a run triggered with retry_refused=true", refusal["owner"], flow)


def hold_back(entries: list[dict], refusals: Mapping[str, Mapping], record_of: Callable[[dict], str],
              plan_only: Iterable[str], flow: str) -> tuple[list[dict], list[Outcome]]:
    """The plan entries to send, and a 'quarantined' outcome for each that Moodle refused before, sent as it
    would be now (``refusals``: those still in quarantine, by record)."""
    plan_only = tuple(plan_only)
    sent, held = [], []
    for entry in entries:
        refusal = refusals.get(record_of(entry))
        if refusal is not None and refusal["fingerprint"] == fingerprint(entry, plan_only):
            held.append(quarantine_outcome(record_of(entry), refusal, flow))
        else:
            sent.append(entry)
    return sent, held


def refused_record(record: str, entry: dict, plan_only: Iterable[str], outcome: Outcome) -> dict:
    """What is remembered of a record Moodle refused: the fingerprint of what was sent, the reason and owner."""
    return {"external_id": record, "fingerprint": fingerprint(entry, plan_only), "reason": outcome.reason,
            "owner": outcome.owner}
