"""What every school flow's plan and apply steps share: the plan file with its guard, one outcome for each
planned record even when an apply stops half-way, the applied file and the links it leaves."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from school.guard import stop_for_guard
from school.school_db import save_links, save_refusals
from sync_common.outcomes import OWNER_MOODLE_ADMIN, Outcome
from sync_common.read_back import IN_DOUBT, NOT_SENT
from sync_common.refusals import hold_back, quarantined
from sync_common.run_files import RunPath, read_json, write_json
from sync_common.write_lock import integration_write_lock


def save_plan(run_dir: RunPath, name: str, writes: dict[str, list], outcomes: list[Outcome], guard: str | None,
              flow: str, **extra) -> dict:
    """Write the plan file: the writes, the guard's verdict, the outcomes of records that need no write."""
    write_json(run_dir / name, {**writes, **extra, "writes": list(writes), "flow": flow, "guard": guard,
                                "outcomes": [o.to_dict() for o in outcomes]})
    return {key: len(items) for key, items in writes.items()}


def _record(item: dict) -> str:
    return item.get("external_id") or item.get("class_external_id") or item["record"]


def hold_for_guard(run_dir: RunPath, names: list[str], *, allow_mass_changes: bool, preview: bool) -> dict:
    """Stop the run before any of these plans is written when a guard tripped (unless the run is a preview or
    allowed to make mass changes); every planned write is then reported as not written, and why."""
    verdicts = [plan["guard"] for plan in (read_json(run_dir / name) for name in names) if plan["guard"]]
    if not verdicts or allow_mass_changes or preview:
        return {"tripped": len(verdicts), "held": False}
    hold_writes(run_dir, names, "the mass-change guard stopped the run (" + "; ".join(verdicts) + ")",
                "school MIS administrator / data engineer")
    stop_for_guard(verdicts)
    return {"tripped": len(verdicts), "held": True}


def hold_writes(run_dir: RunPath, names: list[str], why: str, owner: str) -> None:
    """Report every write these plans hold as not written, and why: a run stopped before writing them."""
    for name in names:
        plan = read_json(run_dir / name)
        held = [Outcome(_record(item), "skipped", f"not written: {why}", owner, plan["flow"]).to_dict()
                for key in plan["writes"] for item in plan[key]]
        write_json(run_dir / name, {**plan, "outcomes": plan["outcomes"] + held})


@dataclass
class EarlierTry:
    """What an earlier try of an apply step left in its applied file (a retry of the task, or a re-run)."""

    done: dict[str, list[dict]] = field(default_factory=dict)  # record → its outcomes, when Moodle answered for it
    in_doubt: set[str] = field(default_factory=set)  # records whose answers were lost
    created_links: list[list] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def split(self, items: list[dict], record: Callable[[dict], str]) -> tuple[list[dict], list[dict]]:
        """The items to read back first (their answers were lost), and those still to send (the others not done)."""
        return ([item for item in items if record(item) in self.in_doubt],
                [item for item in items if record(item) not in self.done])

    def carried(self, outcomes: list[Outcome], created: list[tuple[str, int]], deleted: list[str]) -> None:
        """Keep what the earlier try learnt from Moodle's answers: its outcomes, links and deletions."""
        outcomes.extend(Outcome(**o) for found in self.done.values() for o in found)
        created.extend((record, course) for record, course in self.created_links if record in self.done)
        deleted.extend(record for record in self.deleted if record in self.done)


def earlier_try(run_dir: RunPath, name: str) -> EarlierTry:
    path = run_dir / name
    if not path.exists():
        return EarlierTry()
    applied = read_json(path)
    earlier = EarlierTry(created_links=applied.get("created_links", []), deleted=applied.get("deleted", []))
    for outcome in applied["outcomes"]:
        if outcome["reason"] == IN_DOUBT:
            earlier.in_doubt.add(outcome["record"])
        elif not outcome["reason"].startswith(NOT_SENT):
            earlier.done.setdefault(outcome["record"], []).append(outcome)
    return earlier


def cut_by_max_input_vars(record: str, flow: str) -> Outcome:
    """A created record Moodle's answer lacks: PHP's max_input_vars cut the call, so it never reached Moodle."""
    return Outcome(record, "failed", "not sent: the call was cut by the site's max_input_vars (lower "
                   "moodle_max_input_vars); it is sent by the next run", OWNER_MOODLE_ADMIN, flow)


def save_applied(run_dir: RunPath, name: str, created: list[tuple[str, int]], deleted: list[str],
                 outcomes: list[Outcome], refused: Sequence[dict] = ()) -> dict:
    """Write what an apply did (also when it stopped half-way), for the links step and the summary; its counts.
    ``refused``: the records Moodle refused (``sync_common.refusals.refused_record``), quarantined by the links
    step."""
    write_json(run_dir / name, {"created_links": created, "deleted": deleted, "refused": list(refused),
                                "outcomes": [o.to_dict() for o in outcomes]})
    return dict(Counter(outcome.action for outcome in outcomes))


def record_links(kind: str, plan_name: str, applied_name: str, integration_key: str, engine: Engine, run_dir: RunPath,
                 holder: str) -> dict:
    """Keep the ``kind`` links of matched and created records, and drop those of deleted or vanished ones, also
    after an apply that stopped half-way (the applied file's ``deleted``: records whose Moodle account or course
    is gone, also one a plan had matched and an administrator deleted during the run)."""
    applied_path = run_dir / applied_name
    if not applied_path.exists():
        return {"written": 0}
    plan, applied = read_json(run_dir / plan_name), read_json(applied_path)
    linked = [tuple(link) for link in plan["links"] if link[0] not in applied["deleted"]] + \
        [tuple(link) for link in applied["created_links"]]
    refused = applied.get("refused", [])
    still = {refusal["external_id"] for refusal in refused} | set(plan.get("quarantined", []))
    with integration_write_lock(engine, integration_key, holder):
        written = save_links(engine, kind, integration_key, linked, plan["unlinks"] + applied["deleted"])
        save_refusals(engine, kind, integration_key, refused,
                      [external_id for external_id, _ in linked if external_id not in still])
    return {"links": len(linked), "written": written, "refused": len(refused)}


def refusals_file(kind: str) -> str:
    return f"school_{kind}_refusals.json"


def hold_back_refused(run_dir: RunPath, kind: str, plan, record_of: Callable[[dict], str], plan_only: tuple[str, ...],
                      flow: str, retry_after_days: int, retry_refused: bool,
                      now: datetime | None = None) -> list[str | None]:
    """Take the records Moodle refused before, unchanged, out of the plan's creates and updates (unless the run
    retries them or their quarantine is over); their 'quarantined' outcomes join the plan's. Returns them."""
    path = run_dir / refusals_file(kind)
    refusals = {} if retry_refused or not path.exists() else quarantined(read_json(path), retry_after_days, now)
    held: list[str | None] = []
    for key in ("creates", "updates"):
        entries, outcomes = hold_back(getattr(plan, key), refusals, record_of, plan_only, flow)
        setattr(plan, key, entries)
        plan.outcomes.extend(outcomes)
        held += [outcome.record for outcome in outcomes]
    return held
