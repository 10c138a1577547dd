"""What a step leaves behind for the run summary: its record-level outcomes and counts, in one defined place of the
run directory, whatever the flow and the source system.

A step writes ``outcomes/<flow>.<step>.json`` (``write_outcomes``): ``{"outcomes": [...], "counts": {flow:
{action: n}}}``, the outcomes as ``Outcome.to_dict`` gives them, the counts those its outcomes do not give (records
read, courses in Moodle), and whatever else the flow's next steps read of it (a plan's writes, an apply's links).
A retry of the step replaces its file. The summary reads every file of the folder (``read_outcomes``) and no
other file of the run; each flow names its files once, in its own module (``step_file``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from sync_common.outcomes import Outcome
from sync_common.run_files import RunPath, read_json, sorted_files, write_json

FOLDER = "outcomes"


def step_file(name: str) -> str:
    """Where, in a run directory, the step ``name`` (``<flow>.<step>``, e.g. ``users.plan``) leaves its outcomes:
    each flow names its files with it, once, in its own module."""
    return f"{FOLDER}/{name}.json"


def write_outcomes(path: RunPath, outcomes: Iterable[Outcome | dict],
                   counts: Mapping[str, Mapping[str, int]] | None = None, **more) -> RunPath:
    """Save, at ``run_dir / step_file(name)``, what a step did to each record, its counts and ``more`` (what its
    flow reads of it)."""
    rows = [outcome.to_dict() if isinstance(outcome, Outcome) else outcome for outcome in outcomes]
    return write_json(path, {
        **more, "outcomes": rows, "counts": {flow: dict(actions) for flow, actions in (counts or {}).items()}})


class StepOutcomes:
    """Every step's outcomes (in the order of the steps' names), read again file by file each time they are gone
    through: a first load leaves ~100,000, which the summary and the report go through without holding them all."""

    def __init__(self, paths: list[RunPath], count: int) -> None:
        self._paths, self._count = paths, count

    def __iter__(self) -> Iterator[dict]:
        for path in self._paths:
            yield from read_json(path)["outcomes"]

    def __len__(self) -> int:
        return self._count


def read_outcomes(run_dir: RunPath) -> tuple[StepOutcomes, dict[str, dict[str, int]]]:
    """Every step's outcomes (read again when gone through) and their counts added up per flow and action."""
    folder = run_dir / FOLDER
    paths = sorted_files(folder, "*.json") if folder.exists() else []
    counts: dict[str, dict[str, int]] = {}
    found = 0
    for path in paths:
        saved = read_json(path)
        found += len(saved["outcomes"])
        for flow, actions in saved.get("counts", {}).items():
            for action, number in actions.items():
                counts.setdefault(flow, {})[action] = counts.get(flow, {}).get(action, 0) + int(number)
    return StepOutcomes(paths, found), counts
