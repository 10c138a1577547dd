"""How step failures meet Airflow: permanent ones fail at once, transient ones use the task's retries."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

from airflow.sdk.exceptions import AirflowFailException, AirflowTaskTimeout

from moodle_provider.exceptions import MoodleError, MoodleTaskTimeout
from sync_common.errors import PermanentStepError

P = ParamSpec("P")
R = TypeVar("R")

OWNER_SLOW_STEP = "the integration's maintainer (its timeouts) / the administrator of its database"
# Sized so that a night converges at a 50% transient fault rate (the arithmetic: README, "Failures").
TASK_RETRIES = 4
FIRST_RETRY_DELAY = timedelta(minutes=1)
MAX_RETRY_DELAY = timedelta(minutes=15)


def retry_args() -> dict:
    """``default_args`` for a DAG's retries: 4, 1 minute after a failure and doubling, at most 15 minutes
    (``MOODLE_SYNC_TASK_RETRIES`` and ``MOODLE_SYNC_TASK_RETRY_DELAY_SECONDS`` override them)."""
    retries = int(os.environ.get("MOODLE_SYNC_TASK_RETRIES", TASK_RETRIES))
    delay = timedelta(seconds=float(os.environ.get("MOODLE_SYNC_TASK_RETRY_DELAY_SECONDS",
                                                   FIRST_RETRY_DELAY.total_seconds())))
    return {"retries": retries, "retry_delay": delay, "retry_exponential_backoff": 2.0 if delay else 0,
            "max_retry_delay": MAX_RETRY_DELAY}


def fail_fast_unless_transient(step: Callable[P, R]) -> Callable[P, R]:
    """Retrying a bad token, a missing function or a tripped guard cannot help: skip the retries.

    A task that ran past its ``execution_timeout`` keeps Airflow's retries (a read task resumes
    where it stopped); its message says what it was doing, and who must look.
    """

    @functools.wraps(step)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return step(*args, **kwargs)
        except MoodleTaskTimeout as timeout:
            raise AirflowTaskTimeout(f"{step.__name__} timed out: {timeout}") from timeout
        except AirflowTaskTimeout as timeout:
            raise AirflowTaskTimeout(f"{step.__name__} timed out: execution_timeout passed while it worked "
                                     f"(more work than the timeouts allow, or a slow database; "
                                     f"owner: {OWNER_SLOW_STEP})") from timeout
        except MoodleError as error:
            if error.transient:
                raise
            raise AirflowFailException(str(error)) from error
        except PermanentStepError as error:
            raise AirflowFailException(str(error)) from error

    return run
