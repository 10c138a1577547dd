"""What every flow does with records its validation rejected: report them, and stop when too many."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sync_common.errors import PermanentStepError
from sync_common.outcomes import Outcome

log = logging.getLogger(__name__)


class TooManyInvalidRecordsError(PermanentStepError):
    """So many records are bad that the source itself is probably wrong: nothing is written."""


def invalid_outcomes(problems: Iterable[tuple[str, Iterable[str], str]], flow: str) -> list[Outcome]:
    """One outcome per rejected (record, reasons, owner), logged by record only."""
    outcomes = [Outcome(record, "invalid", "; ".join(reasons), owner, flow=flow) for record, reasons, owner in problems]
    for outcome in outcomes:
        log.warning("%s %s skipped: %s", flow, outcome.record, outcome.reason)
    return outcomes


def check_invalid_share(invalid: int, checked: int, limit: float, what: str, owner: str) -> None:
    share = invalid / checked if checked else 0.0
    if share > limit:
        raise TooManyInvalidRecordsError(
            f"{invalid} of {checked} {what} ({share:.0%}) are invalid, more than the allowed {limit:.0%}; "
            f"fix them (owner: {owner}) — the list is in the run summary"
        )
