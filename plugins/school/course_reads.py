"""Who is enrolled in a set of Moodle courses, one ``core_enrol_get_enrolled_users`` call per course, read so that a
retry of the task asks Moodle only for the courses still missing (``sync_common.read_progress``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from moodle_provider.hooks.moodle import MoodleHook
from sync_common.read_progress import MISSING, ReadProgress
from sync_common.run_files import RunPath, write_json


def read_enrolled(hook: MoodleHook, run_dir: RunPath, name: str, course_ids: Iterable[int], userfields: str,
                  shape: Callable[[list[dict]], Any], limit: int = 0) -> dict[str, Any]:
    """Each course's enrolled users as ``shape`` keeps them (at most ``limit`` of them when it is not 0), written to
    ``<name>.json`` in the run's directory once every course answered; the answers of a failed try are kept for
    its retry under ``name``."""
    course_ids = sorted(course_ids)
    options = [{"name": "userfields", "value": userfields}]
    if limit:
        options.append({"name": "limitnumber", "value": str(limit)})
    stamp = hashlib.sha256(json.dumps([course_ids, options]).encode()).hexdigest()
    answers = {}
    with ReadProgress(run_dir, name, stamp) as progress:
        for course_id in course_ids:
            users = progress.answer(f"course {course_id}", partial(_read_one, hook, course_id, options, shape))
            if users is not MISSING:
                answers[str(course_id)] = users
        progress.raise_if_incomplete()
        write_json(run_dir / f"{name}.json", answers)
        progress.discard()
    return answers


def _read_one(hook: MoodleHook, course_id: int, options: list[dict], shape: Callable[[list[dict]], Any]) -> Any:
    return shape(hook.call("core_enrol_get_enrolled_users", courseid=course_id, options=options))
