"""Why a task failed, in words, with its owner and what to do: found through the causes Airflow sees (a permanent
Moodle error arrives wrapped in AirflowFailException), recorded by the failure callback and read by the summary."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from moodle_provider.exceptions import (
    OWNER_MOODLE,
    OWNER_MOODLE_IT,
    MoodleInvalidTokenError,
    MoodleMaintenanceError,
    MoodleUnreachableError,
)
from psiber.user_plan import SuspendGuardTripped
from sync_common.task_errors import OWNER_MAINTAINER, read_failures, record_failure
from sync_common.task_failures import fail_fast_unless_transient


def raised_by_step(error: Exception) -> BaseException:
    """The exception Airflow's task runner gets when a step raises ``error``."""

    @fail_fast_unless_transient
    def check_moodle_site():
        raise error

    with pytest.raises(BaseException) as caught:
        check_moodle_site()
    return caught.value


@pytest.mark.parametrize(("error", "words", "owner", "detail", "to_do", "transient"), [
    (MoodleUnreachableError("cannot connect to https://moodle.example (ConnectionError)", wsfunction="f"),
     "Moodle unreachable", OWNER_MOODLE_IT, "cannot connect to https://moodle.example (ConnectionError)",
     "Clear check_moodle_site once the site answers again", True),
    (MoodleMaintenanceError("The site is in maintenance mode"), "Moodle in maintenance mode", OWNER_MOODLE,
     "The site is in maintenance mode", "Clear check_moodle_site once maintenance mode is off", True),
    (MoodleInvalidTokenError("Invalid token - token not found", errorcode="invalidtoken"),
     "Moodle refused the web-service token", OWNER_MOODLE, "Invalid token - token not found",
     "put a valid token in the Moodle Connection's Password (Admin > Connections), then Clear check_moodle_site",
     False),
    (SuspendGuardTripped("the plan would suspend 90 of 100 active Moodle users; trigger the run with the parameter "
                         "allow_mass_suspension=true (owner: PSIber HR / data engineer)"),
     "Safety guard stopped the run before any write", "PSIber HR / data engineer",
     "the plan would suspend 90 of 100 active Moodle users; trigger the run with the parameter "
     "allow_mass_suspension=true", "check the source data; if the changes are intended, trigger a run with the "
     "parameter the error names", False),
    (KeyError("surname"), "Failed (KeyError)", OWNER_MAINTAINER, "'surname'",
     "read the task's log; Clear check_moodle_site once mended", False),
])
def test_a_failed_task_is_recorded_in_words_with_its_owner_and_next_step_and_read_back_by_the_summary(
        tmp_path, error, words, owner, detail, to_do, transient):
    context = {"ti": SimpleNamespace(task_id="check_moodle_site", map_index=-1, try_number=1),
               "run_id": "scheduled__2026-12-06T02:00:00+00:00", "exception": raised_by_step(error)}
    record_failure(context, tmp_path)
    [failure] = read_failures(tmp_path, [{"task_id": "check_moodle_site", "map_index": -1}])
    assert (failure["task"], failure["error"], failure["owner"], failure["detail"], failure["next_step"],
            failure["transient"]) == ("check_moodle_site", words, owner, detail, to_do, transient)
    assert failure["failed_at"]


def test_a_mapped_task_is_named_with_its_index_and_one_that_left_no_word_says_so(tmp_path):
    context = {"ti": SimpleNamespace(task_id="read_completions", map_index=2, try_number=1), "run_id": "r",
               "exception": raised_by_step(MoodleUnreachableError("cannot connect"))}
    record_failure(context, tmp_path)
    found = read_failures(tmp_path, [{"task_id": "read_completions", "map_index": 2},
                                     {"task_id": "read_completions", "map_index": 3}])
    assert [(f["task"], f["error"]) for f in found] == [("read_completions[2]", "Moodle unreachable"),
                                                        ("read_completions[3]", "Failed")]
    assert "stopped or lost its worker" in found[1]["detail"] and found[1]["owner"] == OWNER_MAINTAINER
