"""The school flows' mass-change guard: one setting, one parameter to pass it, one message."""

from __future__ import annotations

from collections.abc import Iterable

from sync_common.mass_change import MassChangeGuardTripped

GUARD_SETTING = "safety.max_change_share"


def stop_for_guard(verdicts: Iterable[str | None]) -> None:
    """Stop the run when a guard tripped, saying how to go on when the changes are intended."""
    tripped = [verdict for verdict in verdicts if verdict]
    if tripped:
        raise MassChangeGuardTripped(
            "; ".join(tripped) + ". An emptied or half-loaded MIS (a rollover in progress) usually causes this: "
            "check the MIS data and preview the run (parameter preview=true); if the changes are intended, "
            "trigger the run with allow_mass_changes=true (owner: school MIS administrator / data engineer)")
