"""Why a task failed, in words support reads first in the run's report: what went wrong, who must act and what
to do next, recorded where the task fails (a task failure callback) rather than dug out of its log.

The callback (``record_task_failure``) leaves ``failures/<task>.<map_index>.json`` in the run directory; the run
summary reads it back for each task that ended failed (``read_failures``). A failed try of a task that is
cleared and fails again replaces its file.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowTaskTimeout

from moodle_provider.exceptions import (
    MoodleAnswerLostError,
    MoodleConnectionSettingError,
    MoodleError,
    MoodleFunctionUnavailableError,
    MoodleInvalidTokenError,
    MoodleMaintenanceError,
    MoodleNotASiteError,
    MoodleRequestError,
    MoodleUnreachableError,
    MoodleWebServicesDisabledError,
)
from sync_common.errors import PermanentStepError
from sync_common.mass_change import MassChangeGuardTripped
from sync_common.outcomes import mask_emails
from sync_common.preflight import IntegrationDisabledError
from sync_common.run_files import RunPath, read_json, write_json

FOLDER = "failures"
OWNER_MAINTAINER = "the integration's maintainer"
_OWNER_IN_MESSAGE = re.compile(r"\s*\(?owner: ([^()]+?)\)?\s*$")

# First match wins: (error type, what went wrong, what to do; {task} is the failed task).
WORDS: tuple[tuple[type[BaseException], str, str], ...] = (
    (MoodleUnreachableError, "Moodle unreachable", "Clear {task} once the site answers again"),
    (MoodleMaintenanceError, "Moodle in maintenance mode", "Clear {task} once maintenance mode is off"),
    (MoodleAnswerLostError, "Moodle did not answer in time",
     "Clear {task} once the site answers normally (what Moodle did meanwhile is read back, not sent twice)"),
    (MoodleInvalidTokenError, "Moodle refused the web-service token",
     "put a valid token in the Moodle Connection's Password (Admin > Connections), then Clear {task}"),
    (MoodleFunctionUnavailableError, "A web-service function is missing from the token's service",
     "add the functions named to the external service in Moodle, then Clear {task}"),
    (MoodleWebServicesDisabledError, "Moodle web services are switched off",
     "enable web services and the REST protocol in Moodle, then Clear {task}"),
    (MoodleConnectionSettingError, "The Moodle Connection cannot be used",
     "correct the Moodle Connection (Admin > Connections), then Clear {task}"),
    (MoodleNotASiteError, "The Moodle Connection's URL is not a Moodle site",
     "correct the Moodle Connection's Host (Admin > Connections), then Clear {task}"),
    (MoodleRequestError, "Moodle refused the request", "mend what Moodle names, then Clear {task}"),
    (MoodleError, "Moodle failed", "Clear {task} once the site answers normally"),
    (MassChangeGuardTripped, "Safety guard stopped the run before any write",
     "check the source data; if the changes are intended, trigger a run with the parameter the error names"),
    (IntegrationDisabledError, "The integration's file does not allow this run",
     "change the integration file if the run should go ahead, then trigger a run"),
    (AirflowTaskTimeout, "Timed out", "Clear {task} (a read resumes where it stopped); raise its timeout if "
                                      "the work outgrew it"),
    (PermanentStepError, "The step refused to go on", "do what the error says, then Clear {task}"),
)


def describe(error: BaseException | str | None, task: str) -> dict[str, Any]:
    """What went wrong (``error``), its message (``detail``), who must act (``owner``) and what to do
    (``next_step``) for an exception a task failed with, the typed error found through the chain of causes
    (a permanent Moodle error reaches Airflow wrapped in AirflowFailException)."""
    typed = _typed(error) if isinstance(error, BaseException) else None
    if typed is None:
        detail = str(error or "")
        owner = _owner_in(detail)
        return {"error": "Failed" if not isinstance(error, BaseException) else f"Failed ({type(error).__name__})",
                "detail": _without_owner(mask_emails(detail)), "owner": owner or OWNER_MAINTAINER,
                "next_step": f"read the task's log; Clear {task} once mended", "transient": False}
    headline, next_step = next((words, then) for kind, words, then in WORDS if isinstance(typed, kind))
    message = typed.moodle_message if isinstance(typed, MoodleError) else str(typed)
    owner = getattr(typed, "owner", None) or _owner_in(str(typed)) or OWNER_MAINTAINER
    return {"error": headline, "detail": _without_owner(mask_emails(message)), "owner": owner,
            "next_step": next_step.format(task=task),
            "transient": bool(getattr(typed, "transient", isinstance(typed, AirflowTaskTimeout)))}


def _typed(error: BaseException) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, tuple(kind for kind, _, _ in WORDS)):
            return current
        current = current.__cause__ or current.__context__
    return None


def _owner_in(message: str) -> str | None:
    found = _OWNER_IN_MESSAGE.search(message)
    return found.group(1).strip() if found else None


def _without_owner(message: str) -> str:
    return _OWNER_IN_MESSAGE.sub("", message).strip()


def task_name(task_id: str, map_index: int | None) -> str:
    return task_id if map_index is None or map_index < 0 else f"{task_id}[{map_index}]"


def _file(run_dir: RunPath, task_id: str, map_index: int | None) -> RunPath:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{task_id}.{-1 if map_index is None else map_index}")
    return run_dir / FOLDER / f"{name}.json"


def record_failure(context: Any, run_dir: RunPath) -> None:
    """What a task's ``on_failure_callback`` does (the DAG builder's task defaults): leave why the task failed in
    the run directory."""
    ti = context["ti"]
    failure = describe(context.get("exception"), ti.task_id)
    write_json(_file(run_dir, ti.task_id, ti.map_index), {
        **failure, "task_id": ti.task_id, "map_index": ti.map_index, "try_number": ti.try_number,
        "failed_at": datetime.now(UTC).isoformat(timespec="seconds")})


def read_failures(run_dir: RunPath, failed: list[dict]) -> list[dict]:
    """Why each of the ``failed`` tasks ({task_id, map_index}) failed; a task that left no word (killed, lost its
    worker) is described as such."""
    found = []
    for task in failed:
        path = _file(run_dir, task["task_id"], task.get("map_index"))
        name = task_name(task["task_id"], task.get("map_index"))
        if path.exists():
            found.append({**read_json(path), "task": name})
        else:
            found.append({**describe("no error was recorded: the task was stopped or lost its worker", name),
                          "task_id": task["task_id"], "map_index": task.get("map_index"), "task": name,
                          "failed_at": None})
    return found
