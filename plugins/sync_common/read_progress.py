"""What a read task already had from Moodle, kept in the run's directory, so that its Airflow
retry asks Moodle only for the rest (user look-ups, results and enrolment reads).

Without it, a retry repeats every call of its batch: at a 50% fault rate a batch of a few
hundred calls then almost never gets through (the arithmetic: README, "Failures"). A call
that still fails after the hook's own retries is left for the task's next try and the batch
goes on, so one try reads all it can; several calls failing in a row mean the site is down,
and the try stops at once rather than wait out every call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any

from moodle_provider.exceptions import MoodleError
from sync_common.run_files import RunPath, owned_folder, read_json, write_json

log = logging.getLogger(__name__)

PROGRESS_FOLDER = "read_progress"
SAVE_EVERY = 20  # answers between two saves: a task killed outright loses these at most
STOP_AFTER_FAILED_CALLS = 3  # in a row, each after the hook's retries: the site is down, not flaky

MISSING = object()  # no answer yet: the call failed in this try


class ReadProgress:
    """Answers by key (one per Moodle call), saved atomically now and then and whenever the try ends;
    each save writes only the answers since the last one, in a file of its own (rewriting all the
    answers at every save cost seconds of CPU on a look-up of 10,000 users).

    ``stamp`` identifies what the task reads (a set of learners, a set of courses): answers kept for another
    (the run cleared and started again) are not used.
    """

    def __init__(self, run_dir: RunPath, name: str, stamp: Any):
        self.folder = owned_folder(run_dir / PROGRESS_FOLDER)  # personal data, as everything in the run's folder
        self.name, self.path = name, self.folder / f"{name}.json"
        self.stamp = stamp
        self.answers: dict[str, Any] = {}
        kept = [read_json(part) for part in self._parts()]
        if all(part.get("stamp") == stamp for part in kept):
            for part in kept:
                self.answers |= part["answers"]
        else:  # answers for another set of learners or courses: of no use
            self._remove_parts()
        self._saved_parts = len(self._parts())
        self._unsaved_keys: list[str] = []
        self.reused = len(self.answers)
        self.asked = 0
        self.failed: list[str] = []
        self._last_error: MoodleError | None = None
        self._failed_in_a_row = 0
        self._discarded = False

    def __enter__(self) -> ReadProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if not self._discarded:
            self.save()  # also when the try is cut short (execution_timeout, a permanent error)

    def answer(self, key: str, ask: Callable[[], Any]) -> Any:
        """The kept answer for ``key``, else ``ask()``'s, kept; ``MISSING`` if the call failed transiently."""
        if key in self.answers:
            return self.answers[key]
        self.asked += 1
        try:
            answer = ask()
        except MoodleError as error:
            if not error.transient:
                raise
            self.failed.append(key)
            self._last_error = error
            self._failed_in_a_row += 1
            if self._failed_in_a_row >= STOP_AFTER_FAILED_CALLS:
                raise self._incomplete(f"{self._failed_in_a_row} calls failed in a row; this try stopped") from error
            return MISSING
        self._failed_in_a_row = 0
        self.answers[key] = answer
        self._unsaved_keys.append(key)
        if len(self._unsaved_keys) >= SAVE_EVERY:
            self.save()
        return answer

    def raise_if_incomplete(self) -> None:
        """Fail the try (transiently, so Airflow retries it) if any answer is still missing."""
        if self.failed:
            raise self._incomplete(f"{len(self.failed)} calls failed")

    def discard(self) -> None:
        """The batch's output is written: a later run of the task reads afresh."""
        self._remove_parts()
        self._discarded = True
        log.info("%s: %d answers asked of Moodle, %d kept from an earlier try", self.name, self.asked, self.reused)

    def save(self) -> None:
        new = {key: self.answers[key] for key in self._unsaved_keys if key in self.answers}
        if new:
            part = self.path if self._saved_parts == 0 else self.folder / f"{self.name}.{self._saved_parts}.json"
            write_json(part, {"stamp": self.stamp, "answers": new})
            self._saved_parts += 1
        self._unsaved_keys = []

    def _parts(self) -> list[RunPath]:
        numbered: list[RunPath] = sorted(self.folder.glob(f"{self.name}.*.json"),
                                         key=lambda part: int(part.name.split(".")[-2]))
        return [self.path, *numbered] if self.path.exists() else []

    def _remove_parts(self) -> None:
        for part in self._parts():
            part.unlink(missing_ok=True)

    def _incomplete(self, what: str) -> MoodleError:
        error = self._last_error
        assert error is not None, "called only after a call failed"
        return type(error)(
            f"{error.moodle_message} — {what}; {len(self.answers)} answers are kept for the task's retry, "
            "which asks Moodle only for the rest", errorcode=error.errorcode, wsfunction=error.wsfunction)
