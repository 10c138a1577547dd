"""A targeted run ("sync now for a few people"): the trigger parameter that lists the records to sync at once, what
its values may be, and how a listed record the source does not have is reported.

A targeted run reads, plans and writes the listed records only. Everyone else is left as it is: nobody outside the
list is taken for a leaver, the mass-change guards weigh the listed records only, and no state that says "a whole
night ran" moves on. Each kind decides which of its flows a targeted run runs; this module is what they share.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowSkipException

from sync_common.errors import PermanentStepError
from sync_common.outcomes import Outcome

PARAM = "sync_only"
OWNER_TRIGGER = "whoever triggered the run"
# A key is one token: letters, digits and the punctuation record keys use; lines and commas separate keys.
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_SEPARATORS = re.compile(r"[\s,;]+")
MAX_KEY_LENGTH = 100


class TargetedRecordsError(PermanentStepError):
    """The trigger parameter lists a value that cannot be a record key: nothing is read or written."""


def targeted_param(keys: str) -> Param:
    """The trigger-form field (a text area, one key a line; null when emptied in the form): ``keys`` says what to
    type, e.g. "employee numbers"."""
    return Param([], type=["null", "array"], items={"type": "string"}, title="Sync only these records",
                 description=f"Sync now only these {keys}, one a line (or separated by commas); everything else "
                 "is left as it is. Empty: the whole integration, as every night.")


def targeted_records(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The record keys a run was triggered with (``sync_only``), trimmed, each once (in any letter case), in the
    order given; empty for a whole run. A value that is not a key (a number, a key with other punctuation) stops
    the run, naming it."""
    given = params.get(PARAM) or []
    if isinstance(given, str):
        given = [given]
    if not isinstance(given, list):
        raise TargetedRecordsError(f"{PARAM} must list record keys (one a line), not {type(given).__name__} "
                                   f"{given!r}; owner: {OWNER_TRIGGER}")
    keys: dict[str, str] = {}
    for value in given:
        if not isinstance(value, str):
            raise TargetedRecordsError(f"{PARAM}: {value!r} is not a record key; give keys as text, e.g. "
                                       f"[\"EE00013\"] (owner: {OWNER_TRIGGER})")
        for key in _SEPARATORS.split(value.strip()):
            if not key:
                continue
            if len(key) > MAX_KEY_LENGTH or not _KEY.match(key):
                raise TargetedRecordsError(f"{PARAM}: '{key[:MAX_KEY_LENGTH]}' is not a record key (letters, digits "
                                           f"and . _ / - only, at most {MAX_KEY_LENGTH} characters); nothing was "
                                           f"synced (owner: {OWNER_TRIGGER})")
            keys.setdefault(key.casefold(), key)
    return tuple(keys.values())


def matching(keys: Iterable[str]) -> frozenset[str]:
    """The keys as records are compared with them: trimmed, in any letter case (``validation.normalised_key``)."""
    return frozenset(key.strip().casefold() for key in keys)


def not_found(listed: Iterable[str], found: Iterable[str], where: str, owner: str, flow: str) -> list[Outcome]:
    """A warning for each listed key no record of the source has (compared as ``matching``): ``where`` names the
    source system, ``owner`` who keeps its data."""
    have = matching(found)
    return [Outcome(key, "warning", f"listed to sync now, but {where} has no record with this key: check the key "
                    f"given, or the record in {where}", owner, flow)
            for key in listed if key.casefold() not in have]


def as_triggered(params: Mapping[str, Any]) -> list[str]:
    """The keys for the run's summary: as ``targeted_records`` reads them, or as given when they are malformed
    (the run's first step failed saying why)."""
    try:
        return list(targeted_records(params))
    except TargetedRecordsError:
        given = params.get(PARAM)
        return [str(value) for value in (given if isinstance(given, list) else [given])]


def skip_in_targeted_run(params: Mapping[str, Any], what: str, syncs_listed: bool = True) -> None:
    """Skip a task a targeted run does not run (``what``: why it waits for a whole run), e.g. reading everyone's
    results. ``syncs_listed``: the integration has a flow that syncs the listed records; without one a targeted
    run would do nothing at all, and stops saying so."""
    listed = targeted_records(params)
    if listed and not syncs_listed:
        raise TargetedRecordsError(f"{PARAM} lists records to sync now ({', '.join(listed)}), but this integration "
                                   f"has no flow that syncs such records: trigger it without {PARAM} (owner: "
                                   f"{OWNER_TRIGGER})")
    if listed:
        raise AirflowSkipException(f"a targeted run ({', '.join(listed)}) {what}")
