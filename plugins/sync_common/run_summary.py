"""The run summary: counts and every record-level outcome, gathered from the run's files."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from psiber.config import Integration
from psiber.course_plan import SITE_FORMAT
from sync_common.run_files import read_frame, read_json, write_json

log = logging.getLogger(__name__)

COUNTED_ACTIONS = {
    "users": ("created", "updated", "suspended", "unsuspended", "unchanged", "invalid", "conflict", "failed",
              "skipped", "warning"),
    "courses": ("created", "updated", "unchanged", "deactivated", "invalid", "conflict", "warning"),
    "results": ("recorded", "invalid", "skipped", "warning"),
    "fields": ("warning",),
}
PROBLEM_ACTIONS = ("invalid", "conflict", "failed", "warning")
# Files holding record-level outcomes: (file, key of the outcome list or None for a bare list).
_OUTCOME_FILES = (
    ("invalid_employees.json", None), ("transform_outcomes.json", None), ("user_plan.json", "outcomes"),
    ("applied.json", "outcomes"), ("course_plan.json", "outcomes"),
    ("result_plan.json", "outcomes"), ("results_loaded.json", "outcomes"), ("field_matches.json", "outcomes"),
)


def _read_if_present(path: Path, key: str | None = None, default=None):
    if not path.exists():
        return default
    content = read_json(path)
    return content[key] if key else content


def _outcomes_in(run_dir: Path) -> list[dict]:
    return [outcome for name, key in _OUTCOME_FILES for outcome in _read_if_present(run_dir / name, key, [])]


def build_run_summary(integration: Integration, run_id: str, run_dir: Path, task_states: dict[str, str]) -> dict:
    """Summarise what the run did per flow, including the steps that did not finish."""
    outcomes = _outcomes_in(run_dir)
    actions = Counter((outcome["flow"], outcome["action"]) for outcome in outcomes)
    counts = {flow: {action: actions.get((flow, action), 0) for action in COUNTED_ACTIONS[flow]}
              for flow in (*integration.flows, "fields")}
    employees = run_dir / "employees.parquet"
    if "users" in counts:
        counts["users"] = {"extracted": len(read_frame(employees)) if employees.exists() else 0, **counts["users"]}
    if "courses" in counts:
        moodle_courses = _read_if_present(run_dir / "moodle_courses.json", default=[])
        in_moodle = sum(course.get("format") != SITE_FORMAT for course in moodle_courses)
        counts["courses"] = {"in_moodle": in_moodle, **counts["courses"]}
    if "results" in counts:
        counts["results"].update(_read_if_present(run_dir / "results_loaded.json", "counts", {}))
    unfinished = sorted(task for task, state in task_states.items() if state not in ("success", "skipped"))
    return {
        "integration": integration.name,
        "run_id": run_id,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "complete": not unfinished,
        "unfinished_tasks": unfinished,
        "counts": counts,
        "outcomes": outcomes,
    }


def write_run_summary(summary: dict, run_dir: Path) -> Path:
    path = write_json(run_dir / "summary.json", summary)
    for flow, counts in summary["counts"].items():
        log.info("Run summary of '%s', %s: %s", summary["integration"], flow, counts)
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
