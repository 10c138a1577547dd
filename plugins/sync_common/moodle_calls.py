"""How many Moodle web-service calls a run made, counted across its tasks and workers.

Every task process counts the calls of the hooks it made (``counted``); when the task ends,
a task callback (``record_moodle_calls``) writes that count into the run's directory, one
file per task try, so retries and mapped tasks on several workers all add up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol, TypeVar

from sync_common.run_files import RunPath, owned_folder, read_json, write_json

_FOLDER = "moodle_calls"


class CountsCalls(Protocol):
    calls_made: int


Hook = TypeVar("Hook", bound=CountsCalls)
_hooks: list[CountsCalls] = []


def counted(hook: Hook) -> Hook:
    """Remember a hook made in this task process, so its calls are recorded when the task ends."""
    _hooks.append(hook)
    return hook


def record_moodle_calls(run_dir: RunPath, task_id: str, map_index: int, try_number: int) -> int:
    """Write the calls of this process's hooks (then forget them) for the run summary to add up."""
    calls = sum(hook.calls_made for hook in _hooks)
    _hooks.clear()
    if calls:
        folder = owned_folder(run_dir / _FOLDER)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{task_id}.{map_index}.{try_number}")
        write_json(folder / f"{name}.json", {"calls": calls})
    return calls


def moodle_calls_of_run(run_dir: RunPath) -> int:
    folder = run_dir / _FOLDER
    return sum(read_json(path)["calls"] for path in folder.glob("*.json")) if folder.exists() else 0


def call_recording_callbacks(run_dir_of: Callable[[str], RunPath]) -> dict:
    """``default_args`` entries that record each task try's Moodle calls, however the try ends."""

    def record(context) -> None:
        ti = context["ti"]
        record_moodle_calls(run_dir_of(context["run_id"]), ti.task_id, ti.map_index, ti.try_number)

    return {"on_success_callback": record, "on_failure_callback": record, "on_retry_callback": record}
