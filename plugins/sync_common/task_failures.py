"""How step failures meet Airflow: permanent ones fail at once, transient ones use the task's retries."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from airflow.sdk.exceptions import AirflowFailException

from moodle.exceptions import MoodleError
from sync_common.errors import PermanentStepError

P = ParamSpec("P")
R = TypeVar("R")


def fail_fast_unless_transient(step: Callable[P, R]) -> Callable[P, R]:
    """Retrying a bad token, a missing function or a tripped guard cannot help: skip the retries."""

    @functools.wraps(step)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return step(*args, **kwargs)
        except MoodleError as error:
            if error.transient:
                raise
            raise AirflowFailException(str(error)) from error
        except PermanentStepError as error:
            raise AirflowFailException(str(error)) from error

    return run
