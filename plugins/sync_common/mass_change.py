"""The mass-change guard: a run that would suspend, delete or unenrol a large share of what it manages is stopped
before it writes, since an empty or truncated source extract (a year end, a rollover) usually causes that."""

from __future__ import annotations

from sync_common.errors import PermanentStepError


class MassChangeGuardTripped(PermanentStepError):
    """The plan would change too large a share of the linked records: nothing is written."""


def excessive_share(changes: int, base: int, max_share: float, min_records: int) -> float | None:
    """The share of ``base`` that ``changes`` are, when it is above ``max_share`` and the base is large enough
    to judge (at least ``min_records``); else None."""
    if base == 0 or base < min_records:
        return None
    share = changes / base
    return share if share > max_share else None


def guard_verdict(changes: int, base: int, what: str, max_share: float, min_records: int, setting: str) -> str | None:
    """None, or the guard's reason to stop: ``what`` names the change with {changes} and {base} in it (e.g.
    "delete {changes} of {base} linked Moodle courses"); ``setting`` is the threshold's name in the settings."""
    share = excessive_share(changes, base, max_share, min_records)
    if share is None:
        return None
    return (f"the plan would {what.format(changes=changes, base=base)} ({share:.0%}), more than the allowed "
            f"{max_share:.0%} ({setting})")
