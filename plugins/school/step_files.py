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
from sync_common.run_files import read_json, write_json


class SiteRefusesWritesError(PermanentStepError):
    """Moodle refused a write for a reason of the site's (a capability, a role it may not assign): no record
    would pass, so nothing more is sent."""


def save_plan(run_dir: Path, name: str, writes: dict[str, list], outcomes: list[Outcome], guard: str | None,
              flow: str, **extra) -> dict:
    """Write the plan file: the writes, the guard's verdict, the outcomes of records that need no write."""
    write_json(run_dir / name, {**writes, **extra, "writes": list(writes), "flow": flow, "guard": guard,
                                "outcomes": [o.to_dict() for o in outcomes]})
    return {key: len(items) for key, items in writes.items()}


def _record(item: dict) -> str:
    return item.get("external_id") or item.get("class_external_id") or item["record"]


def hold_for_guard(run_dir: Path, names: list[str], *, allow_mass_changes: bool, preview: bool) -> dict:
    """Stop the run before any of these plans is written when a guard tripped (unless the run is a preview or
    allowed to make mass changes); every planned write is then reported as not written, and why."""
    verdicts = [plan["guard"] for plan in (read_json(run_dir / name) for name in names) if plan["guard"]]
    if not verdicts or allow_mass_changes or preview:
        return {"tripped": len(verdicts), "held": False}
    hold_writes(run_dir, names, "the mass-change guard stopped the run (" + "; ".join(verdicts) + ")",
                "school MIS administrator / data engineer")
    stop_for_guard(verdicts)
    return {"tripped": len(verdicts), "held": True}


def hold_writes(run_dir: Path, names: list[str], why: str, owner: str) -> None:
    """Report every write these plans hold as not written, and why: a run stopped before writing them."""
    for name in names:
        plan = read_json(run_dir / name)
        held = [Outcome(_record(item), "skipped", f"not written: {why}", owner, plan["flow"]).to_dict()
                for key in plan["writes"] for item in plan[key]]
        write_json(run_dir / name, {**plan, "outcomes": plan["outcomes"] + held})


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
