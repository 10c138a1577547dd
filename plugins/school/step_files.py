"""What every school flow's plan and apply steps share: the plan file with its guard, and one outcome for each
planned record even when an apply stops half-way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from moodle.exceptions import MoodleRequestError
from school.guard import stop_for_guard
from sync_common.errors import PermanentStepError
from sync_common.outcomes import OWNER_MOODLE_ADMIN, Outcome
from sync_common.run_files import write_json


class SiteRefusesWritesError(PermanentStepError):
    """Moodle refused a write for a reason of the site's (a capability, a role it may not assign): no record
    would pass, so nothing more is sent."""


def save_plan(run_dir: Path, name: str, writes: dict[str, list], outcomes: list[Outcome], guard: str | None, *,
              allow_mass_changes: bool, preview: bool, **extra) -> dict:
    """Write the plan file (the writes, the guard's verdict, the outcomes of records that need no write) and
    stop the run when the guard tripped, unless the run is a preview or allowed to make mass changes."""
    write_json(run_dir / name, {**writes, **extra, "guard": guard, "outcomes": [o.to_dict() for o in outcomes]})
    if not (allow_mass_changes or preview):
        stop_for_guard([guard])
    return {key: len(items) for key, items in writes.items()}


def site_refusal(error: MoodleRequestError) -> SiteRefusesWritesError:
    return SiteRefusesWritesError(f"Moodle refused a write for a reason of the site's, not of the records "
                                  f"({error}); nothing more was sent (owner: {OWNER_MOODLE_ADMIN})")


@contextmanager
def every_record_answered(planned: list[tuple[str, str]], outcomes: list[Outcome],
                          refused_by_site: Callable[[MoodleRequestError], Exception] = site_refusal) -> Iterator[None]:
    """Around an apply: if it stops, each planned (record, flow) it never reached gets a 'not sent' outcome; a
    refusal of the site's own becomes ``refused_by_site`` (a permanent failure)."""
    try:
        yield
    except Exception as error:
        reached = {outcome.record for outcome in outcomes}
        outcomes.extend(Outcome(record, "failed", f"not sent: the step stopped before this record "
                                f"({type(error).__name__}); it is sent by the next run", OWNER_MOODLE_ADMIN, flow)
                        for record, flow in dict.fromkeys(planned) if record not in reached)
        if isinstance(error, MoodleRequestError):
            raise refused_by_site(error) from error
        raise
