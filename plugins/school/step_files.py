"""What every school flow's plan and apply steps share: the plan file with its guard, one outcome for each
planned record even when an apply stops half-way, the applied file and the links it leaves."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine

from moodle.exceptions import MoodleAnswerLostError, MoodleRequestError
from school.guard import stop_for_guard
from school.school_db import save_links
from sync_common.errors import PermanentStepError
from sync_common.outcomes import OWNER_MOODLE_ADMIN, Outcome
from sync_common.run_files import read_json, write_json
from sync_common.write_lock import integration_write_lock


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
        why = (f"not known to be written: Moodle's answers were lost ({type(error).__name__}) and it may have "
               "done it; the step's retry reads back what Moodle holds before sending it"
               if isinstance(error, MoodleAnswerLostError) else
               f"not sent: the step stopped before this record ({type(error).__name__}); it is sent by the next run")
        outcomes.extend(Outcome(record, "failed", why, OWNER_MOODLE_ADMIN, flow)
                        for record, flow in dict.fromkeys(planned) if record not in reached)
        if isinstance(error, MoodleRequestError):
            raise refused_by_site(error) from error
        raise


def cut_by_max_input_vars(record: str, flow: str) -> Outcome:
    """A created record Moodle's answer lacks: PHP's max_input_vars cut the call, so it never reached Moodle."""
    return Outcome(record, "failed", "not sent: the call was cut by the site's max_input_vars (lower "
                   "moodle_max_input_vars); it is sent by the next run", OWNER_MOODLE_ADMIN, flow)


def save_applied(run_dir: Path, name: str, created: list[tuple[str, int]], deleted: list[str],
                 outcomes: list[Outcome]) -> dict:
    """Write what an apply did (also when it stopped half-way), for the links step and the summary; its counts."""
    write_json(run_dir / name, {"created_links": created, "deleted": deleted,
                                "outcomes": [o.to_dict() for o in outcomes]})
    return dict(Counter(outcome.action for outcome in outcomes))


def record_links(kind: str, plan_name: str, applied_name: str, integration_key: str, engine: Engine, run_dir: Path,
                 holder: str) -> dict:
    """Keep the ``kind`` links of matched and created records, and drop those of deleted or vanished ones, also
    after an apply that stopped half-way."""
    applied_path = run_dir / applied_name
    if not applied_path.exists():
        return {"written": 0}
    plan, applied = read_json(run_dir / plan_name), read_json(applied_path)
    linked = [tuple(link) for link in plan["links"] + applied["created_links"]]
    with integration_write_lock(engine, integration_key, holder):
        written = save_links(engine, kind, integration_key, linked, plan["unlinks"] + applied["deleted"])
    return {"links": len(linked), "written": written}
