"""ReadProgress: answers kept across a task's tries, a failed call left for the retry, a dead site stops the try."""

import pytest
from airflow.sdk.exceptions import AirflowTaskTimeout

from moodle_provider.exceptions import MoodleInvalidTokenError, MoodleMaintenanceError, MoodleTransientError
from sync_common.read_progress import MISSING, SAVE_EVERY, STOP_AFTER_FAILED_CALLS, ReadProgress
from sync_common.run_files import read_json


def failing(error):
    def ask():
        raise error
    return ask


def test_answers_kept_by_one_try_serve_the_next_and_a_failed_call_is_left_for_it(tmp_path):
    with pytest.raises(MoodleTransientError, match=r"HTTP 503 — 1 calls failed; 1 answers are kept"):
        with ReadProgress(tmp_path, "batch", stamp=1) as first:
            assert first.answer("a", lambda: {"n": 1}) == {"n": 1}
            assert first.answer("b", failing(MoodleTransientError("HTTP 503", wsfunction="f"))) is MISSING
            assert first.answer("c", lambda: [3]) == [3]  # one failed call does not stop the batch
            del first.answers["c"]  # as if the task died before its last save
            first.raise_if_incomplete()
    asked = []
    with ReadProgress(tmp_path, "batch", stamp=1) as second:
        for key in "abc":
            second.answer(key, lambda key=key: asked.append(key) or key)
        second.raise_if_incomplete()
    assert asked == ["b", "c"] and second.reused == 1


def test_answers_kept_for_another_set_of_learners_are_not_used(tmp_path):
    with ReadProgress(tmp_path, "batch", stamp=1) as first:
        first.answer("a", lambda: "old")
    with ReadProgress(tmp_path, "batch", stamp=2) as second:
        assert second.answer("a", lambda: "new") == "new" and second.reused == 0


def test_calls_failing_in_a_row_stop_the_try_with_the_last_errors_kind(tmp_path):
    with ReadProgress(tmp_path, "batch", stamp=1) as progress:
        progress.answer("kept", lambda: 1)
        for n in range(STOP_AFTER_FAILED_CALLS - 1):
            assert progress.answer(f"k{n}", failing(MoodleTransientError("HTTP 502", wsfunction="f"))) is MISSING
        with pytest.raises(MoodleMaintenanceError) as raised:
            progress.answer("last", failing(MoodleMaintenanceError("site in maintenance mode", wsfunction="f")))
    assert str(raised.value) == (
        f"Moodle in f: site in maintenance mode — {STOP_AFTER_FAILED_CALLS} calls failed in a row; this try stopped; "
        "1 answers are kept for the task's retry, which asks Moodle only for the rest (owner: Moodle administrator)")


def test_a_permanent_failure_is_not_left_for_a_retry(tmp_path):
    with pytest.raises(MoodleInvalidTokenError), ReadProgress(tmp_path, "batch", stamp=1) as progress:
        progress.answer("a", failing(MoodleInvalidTokenError("Invalid token", wsfunction="f")))
    assert progress.failed == []


def test_a_try_cut_by_its_execution_timeout_keeps_what_it_read(tmp_path):
    with pytest.raises(AirflowTaskTimeout), ReadProgress(tmp_path, "batch", stamp=1) as progress:
        for n in range(SAVE_EVERY - 1):  # fewer than a periodic save
            progress.answer(str(n), lambda n=n: n)
        raise AirflowTaskTimeout("Timeout, PID: 1")
    assert ReadProgress(tmp_path, "batch", stamp=1).reused == SAVE_EVERY - 1


def test_a_finished_batch_leaves_no_progress_behind(tmp_path):
    with ReadProgress(tmp_path, "batch", stamp=1) as progress:
        progress.answer("a", lambda: 1)
        progress.raise_if_incomplete()
        progress.discard()
    assert not progress.path.exists()


def test_each_save_writes_only_the_answers_since_the_last_and_a_retry_reads_them_all(tmp_path):
    with ReadProgress(tmp_path, "batch", stamp=1) as progress:
        for n in range(2 * SAVE_EVERY + 1):
            progress.answer(str(n), lambda n=n: n)
    parts = {part.name: len(read_json(part)["answers"]) for part in (tmp_path / "read_progress").iterdir()}
    assert parts == {"batch.json": SAVE_EVERY, "batch.1.json": SAVE_EVERY, "batch.2.json": 1}
    assert ReadProgress(tmp_path, "batch", stamp=1).reused == 2 * SAVE_EVERY + 1
    assert ReadProgress(tmp_path, "batch", stamp=2).reused == 0 and not list((tmp_path / "read_progress").iterdir())
