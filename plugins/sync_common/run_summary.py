"""The run summary: counts and every record-level outcome, gathered from what the run's steps left behind
(``step_outputs``), whatever the source system. Its outcomes are read again from the steps' files whenever gone
through (``StepOutcomes``), not held: a first load leaves ~100,000.

Counts are generic over actions: every (flow, action) an outcome carries is counted, so a
flow that starts reporting a new action needs no change here. ``ACTION_ORDER`` only says in
which order known actions are shown; unknown ones follow in alphabetical order.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from sync_common.moodle_calls import moodle_calls_of_run
from sync_common.run_files import RunPath, write_json
from sync_common.step_outputs import read_outcomes
from sync_common.task_errors import read_failures

log = logging.getLogger(__name__)

# Records someone has to look at: shown first in reports, each with its reason and owner.
PROBLEM_ACTIONS = ("failed", "conflict", "invalid", "quarantined", "warning")
ACTION_ORDER = (
    "extracted", "out_of_scope", "in_moodle", "created", "adopted", "updated", "suspended", "unsuspended",
    "deactivated",
    "would_delete", "would_unenrol", "would_remove_role", "would_suspend", "would_create", "would_update",
    "would_unsuspend", "would_enrol", "would_add_role", "deleted", "unenrolled", "role_removed", "role_changed",
    "role_added", "kept",
    "recorded", "new_attempts", "already_recorded", "completions_changed", "in_progress", "unchanged", "skipped",
    "offered", "offered_again", "withdrawn", "notified", "requested", "enrolled", "refused", "awaiting_approval",
    *PROBLEM_ACTIONS,
)
_SETTLED_STATES = ("success", "skipped")


class Integration(Protocol):
    """What a run's summary needs of an integration, whatever its source system."""

    name: str

    @property
    def reported_flows(self) -> tuple[str, ...]: ...


def action_rank(action: str) -> tuple[int, str]:
    """Sort key: known actions in display order, then any other action alphabetically."""
    return (ACTION_ORDER.index(action), "") if action in ACTION_ORDER else (len(ACTION_ORDER), action)


def is_problem(action: str) -> bool:
    return action in PROBLEM_ACTIONS


def count_actions(flows: list[str], outcomes: Iterable[dict], counted: Mapping[str, Iterable[str]] | None = None,
                  given: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, dict[str, int]]:
    """Per flow (``flows`` in their order, then any other an outcome names), each action's count: the flow's
    ``counted`` actions (0 when none), every other one found, and the counts the steps ``given`` beside their
    outcomes (records read, courses in Moodle), which take precedence."""
    counted, given = counted or {}, given or {}
    found = Counter((outcome["flow"], outcome["action"]) for outcome in outcomes)
    counts = {}
    for flow in [*flows, *sorted({flow for flow, _ in found} - set(flows))]:
        actions = {*counted.get(flow, ()), *(action for other, action in found if other == flow),
                   *given.get(flow, {})}
        numbers = {**{action: found.get((flow, action), 0) for action in actions}, **given.get(flow, {})}
        counts[flow] = {action: numbers[action] for action in sorted(actions, key=action_rank)}
    return counts


def build_run_summary(integration: Integration, run_id: str, run_dir: RunPath, tasks: list[dict],
                      started_at: datetime | None = None,
                      counted_actions: Mapping[str, Iterable[str]] | None = None, try_number: int = 0) -> dict:
    """Summarise what the run did per flow, including the steps that did not finish, from what its steps left
    in the run directory (``step_outputs``, and why a task failed: ``task_errors``).

    ``tasks``: the run's other task instances as {task_id, map_index, state, duration}.
    A task that failed is told apart from those that did not run because of it.
    ``counted_actions``: the actions of each flow shown even when no record took them (the kind's).
    ``try_number``: how many times the run was cleared before this summary (Airflow's clear number).
    ``state``: Airflow's word for how the run ends, success or failed.
    """
    outcomes, given = read_outcomes(run_dir)
    flows = list(integration.reported_flows)
    counts = count_actions(flows, outcomes, counted_actions,
                           {flow: numbers for flow, numbers in given.items() if flow in flows})
    names = [_task_name(task) for task in tasks]
    unfinished = sorted(name for name, task in zip(names, tasks, strict=True) if task["state"] not in _SETTLED_STATES)
    failed = [task for task in tasks if task["state"] == "failed"]
    return {
        "integration": integration.name,
        "run_id": run_id,
        "try_number": try_number,
        "state": "failed" if unfinished else "success",
        "started_at": started_at.isoformat(timespec="seconds") if started_at else None,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "complete": not unfinished,
        "unfinished_tasks": unfinished,
        "failed_tasks": sorted(name for name, task in zip(names, tasks, strict=True) if task["state"] == "failed"),
        "failures": read_failures(run_dir, sorted(failed, key=_task_name)),
        "tasks": sorted(tasks, key=lambda task: (task["task_id"], task.get("map_index", -1))),
        "moodle_calls": moodle_calls_of_run(run_dir),
        "counts": counts,
        "outcomes": outcomes,
    }


def _task_name(task: dict) -> str:
    index = task.get("map_index", -1)
    return task["task_id"] if index is None or index < 0 else f"{task['task_id']}[{index}]"


def write_run_summary(summary: dict, run_dir: RunPath) -> RunPath:
    # summary.json holds every outcome, for whoever reads the run's files (notifications): held while written and
    # logged only.
    outcomes = list(summary["outcomes"])
    path = write_json(run_dir / "summary.json", {**summary, "outcomes": outcomes})
    for flow, counts in summary["counts"].items():
        log.info("Run summary of '%s', %s: %s", summary["integration"], flow,
                 ", ".join(f"{action} {count}" for action, count in counts.items()))
    log.info("Moodle web-service calls: %d", summary["moodle_calls"])
    if summary["failed_tasks"]:
        log.error("Tasks that failed: %s", ", ".join(summary["failed_tasks"]))
    for failure in summary.get("failures", []):
        log.error("%s failed: %s (%s) — %s — %s", failure["task"], failure["error"], failure["detail"],
                  failure["owner"], failure["next_step"])
    not_run = [name for name in summary["unfinished_tasks"] if name not in summary["failed_tasks"]]
    if not_run:
        log.warning("Tasks that did not run because a task before them failed: %s", ", ".join(not_run))
    for outcome in outcomes:
        if is_problem(outcome["action"]):
            log.warning("%s: %s: %s — %s (owner: %s)", outcome["flow"], outcome["record"], outcome["action"],
                        outcome["reason"], outcome["owner"] or "n/a")
    return path


def small_summary(summary: dict, path: RunPath) -> dict:
    """What goes to XCom: counts, the problems' first lines and where the full summary is."""
    problems = [o for o in summary["outcomes"] if is_problem(o["action"])]
    return {
        "complete": summary["complete"],
        "failed_tasks": summary["failed_tasks"],
        "counts": summary["counts"],
        "problems": [f"{o['record']}: {o['action']}: {o['reason']} (owner: {o['owner'] or 'n/a'})"
                     for o in problems[:20]],
        "more_problems": max(0, len(problems) - 20),
        "summary_path": str(path),
    }
