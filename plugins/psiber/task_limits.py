"""How long each task may run, and how often and how late Airflow retries it.

Retries, sized so that a night converges at a 50% transient fault rate. The hook tries each
call 4 times, so a call fails only when all 4 tries do: 0.5^4 = 1/16. A read task keeps every
answer it got and goes on past a failed call (``read_progress``), so each try of the task
leaves 1/16 of what it still had to read, and after k tries a call is still unanswered with
probability 16^-k. A night of N read calls converges when none is: (1 - 16^-k)^N.

    tries k | N = 1,000 | N = 10,000
    3       |    78.3%  |     8.7%
    5       |    99.9%  |    99.1%

Hence 4 retries (5 tries) instead of 2. They come 1, 2, 4 and 8 minutes after a failure (the
delay doubles each time, Airflow adds up to as much again at random, and caps it at 15
minutes): 15 to 30 minutes in all, long enough for a restarted web server or a short
maintenance window, short enough for the night. A task without ``read_progress`` (a few
calls, such as the site check) repeats its calls on each try: with M calls it fails a whole
night with probability (1 - (15/16)^M)^5, 0.06% for M = 4.

The retries themselves (``sync_common.task_failures.retry_args``, every DAG's) follow this sizing;
``MOODLE_SYNC_TASK_RETRIES`` and ``MOODLE_SYNC_TASK_RETRY_DELAY_SECONDS`` override the count and the
first delay (tests: no retries, or retries at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from psiber.config import Integration
from psiber.result_read_tasks import largest_completion_read, largest_grade_read

# A completion read makes one call per user plus one per completion PSIber lacks: three per user
# leaves room for two new completions each (a first full read has more; a cut task resumes).
CALLS_PER_USER_READ = 3


@dataclass(frozen=True)
class ExecutionTimeouts:
    """``execution_timeout`` of each kind of task, from the integration's ``timeouts`` and largest batches."""

    step: timedelta
    population: timedelta
    grade_reads: timedelta
    completion_reads: timedelta


def execution_timeouts(integration: Integration) -> ExecutionTimeouts:
    limits, results = integration.timeouts, integration.results
    step = timedelta(minutes=limits.step_minutes)
    per_call = timedelta(seconds=limits.moodle_call_seconds)
    return ExecutionTimeouts(
        step=step,
        population=timedelta(minutes=limits.population_minutes),
        grade_reads=step + per_call * largest_grade_read(results),
        completion_reads=step + per_call * largest_completion_read(results) * CALLS_PER_USER_READ,
    )
