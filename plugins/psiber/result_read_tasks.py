"""How many mapped tasks the results reads are split into.

Each task instance costs Airflow work of its own whatever it reads: scheduling, state and XCom
writes to the metadata database, and on a worker a process that imports Airflow and the DAG.
At 300 courses in batches of 5 that was 60 grade-reading tasks a night, most of their CPU spent
around the tasks rather than in them. So a read is cut into about ``READ_TASKS_PER_PARALLEL_READ``
tasks per slot of ``max_parallel_reads`` (the pool and ``max_active_tis_per_dagrun`` still bound
how many run at once): enough that the slots stay busy when one task is slow or retried, few enough
that each carries many calls. A large task is safe to retry, since its reads resume
(``sync_common.read_progress``). A batch size set in the integration file is used as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from psiber.config import Integration, ResultSync

READ_TASKS_PER_PARALLEL_READ = 3


@dataclass(frozen=True)
class BatchBounds:
    """The smallest batch worth a task of its own, and the largest (its ``execution_timeout`` allows for it)."""

    smallest: int
    largest: int


COURSES_PER_GRADE_READ = BatchBounds(smallest=10, largest=100)
USERS_PER_COMPLETION_READ = BatchBounds(smallest=100, largest=500)


def results_from_report(integration: Integration) -> bool:
    """Whether completions come from an enrolment-results report (``moodle_reports``): then they are read
    before grades, which are read only for the courses of the completions read."""
    reports = integration.moodle_reports
    return bool(reports and reports.enrolment_results)


def batch_size(items: int, parallel_reads: int, bounds: BatchBounds) -> int:
    """Items per task, so that ``items`` make about ``READ_TASKS_PER_PARALLEL_READ`` tasks per parallel read."""
    return min(bounds.largest, max(bounds.smallest, ceil(items / (parallel_reads * READ_TASKS_PER_PARALLEL_READ))))


def courses_per_grade_read(results: ResultSync, courses: int) -> int:
    return results.courses_per_read_task or batch_size(courses, results.max_parallel_reads, COURSES_PER_GRADE_READ)


def users_per_completion_read(results: ResultSync, users: int) -> int:
    return results.users_per_read_task or batch_size(users, results.max_parallel_reads, USERS_PER_COMPLETION_READ)


def largest_grade_read(results: ResultSync) -> int:
    return results.courses_per_read_task or COURSES_PER_GRADE_READ.largest


def largest_completion_read(results: ResultSync) -> int:
    return results.users_per_read_task or USERS_PER_COMPLETION_READ.largest
