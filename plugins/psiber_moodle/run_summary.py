"""The run summary: counts and every record-level outcome, gathered from the run's files."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from psiber_moodle.config import Integration
from psiber_moodle.run_files import read_frame, read_json, write_json

log = logging.getLogger(__name__)

COUNTED_ACTIONS = ("created", "updated", "suspended", "unsuspended", "unchanged", "invalid", "conflict",
                   "failed", "skipped", "warning")
PROBLEM_ACTIONS = ("invalid", "conflict", "failed", "warning")


def _outcomes_in(run_dir: Path) -> list[dict]:
    outcomes: list[dict] = []
    for name, key in (("invalid_employees.json", None), ("transform_outcomes.json", None),
                      ("user_plan.json", "outcomes"), ("applied.json", "outcomes")):
        path = run_dir / name
        if path.exists():
            content = read_json(path)
            outcomes += content[key] if key else content
    return outcomes


def build_run_summary(integration: Integration, run_id: str, run_dir: Path, task_states: dict[str, str]) -> dict:
    """Summarise what the run did, including the steps that did not finish and why it matters."""
    employees = run_dir / "employees.parquet"
    outcomes = _outcomes_in(run_dir)
    counts = Counter(outcome["action"] for outcome in outcomes)
    unfinished = sorted(task for task, state in task_states.items() if state not in ("success", "skipped"))
    return {
        "integration": integration.name,
        "run_id": run_id,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "complete": not unfinished,
        "unfinished_tasks": unfinished,
        "counts": {"extracted": len(read_frame(employees)) if employees.exists() else 0,
                   **{action: counts.get(action, 0) for action in COUNTED_ACTIONS}},
        "outcomes": outcomes,
    }


def write_run_summary(summary: dict, run_dir: Path) -> Path:
    path = write_json(run_dir / "summary.json", summary)
    log.info("Run summary of '%s': %s", summary["integration"], summary["counts"])
    for outcome in summary["outcomes"]:
        if outcome["action"] in PROBLEM_ACTIONS:
            log.warning("%s: %s — %s (owner: %s)", outcome["record"], outcome["action"],
                        outcome["reason"], outcome["owner"] or "n/a")
    return path


def small_summary(summary: dict, path: Path) -> dict:
    """What goes to XCom: counts, the problems' first lines and where the full summary is."""
    problems = [o for o in summary["outcomes"] if o["action"] in PROBLEM_ACTIONS]
    return {
        "complete": summary["complete"],
        "counts": summary["counts"],
        "problems": [f"{o['record']}: {o['action']}: {o['reason']}" for o in problems[:20]],
        "more_problems": max(0, len(problems) - 20),
        "summary_path": str(path),
    }
