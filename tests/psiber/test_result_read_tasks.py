"""The results reads make about three mapped tasks per parallel read, unless the integration file sets a batch size."""

from datetime import timedelta

from factories import integration
from psiber import result_sync
from psiber.result_read_tasks import COURSES_PER_GRADE_READ, READ_TASKS_PER_PARALLEL_READ, USERS_PER_COMPLETION_READ
from psiber.task_limits import CALLS_PER_USER_READ, execution_timeouts
from sync_common.run_files import write_json


def grade_reads(tmp_path, courses: int, **results) -> list[list[int]]:
    write_json(tmp_path / "learners.json", {"course_ids": list(range(1, courses + 1))})
    return result_sync.grade_read_batches(integration(results=results), tmp_path)


def completion_reads(tmp_path, users: int, **results) -> list[list[int]]:
    write_json(tmp_path / "learners.json", {"watermark": 0, "active": list(range(1, users + 1))})
    return result_sync.completion_read_batches(integration(results=results), tmp_path)


def test_three_hundred_courses_make_three_grade_reads_per_parallel_read(tmp_path):
    batches = grade_reads(tmp_path, 300, max_parallel_reads=4)
    assert len(batches) == 4 * READ_TASKS_PER_PARALLEL_READ
    assert sorted(course for batch in batches for course in batch) == list(range(1, 301))  # each course once
    assert len(grade_reads(tmp_path, 300, max_parallel_reads=8)) == 8 * READ_TASKS_PER_PARALLEL_READ


def test_a_small_site_reads_its_courses_in_one_task_and_a_large_one_in_tasks_of_at_most_the_largest_batch(tmp_path):
    assert grade_reads(tmp_path, 7) == [list(range(1, 8))]
    assert len(grade_reads(tmp_path, 30, max_parallel_reads=4)) == 30 // COURSES_PER_GRADE_READ.smallest
    batches = grade_reads(tmp_path, 5000, max_parallel_reads=4)
    assert max(len(batch) for batch in batches) == COURSES_PER_GRADE_READ.largest
    assert len(batches) == 5000 // COURSES_PER_GRADE_READ.largest


def test_a_batch_size_in_the_integration_file_is_used_as_it_is(tmp_path):
    assert len(grade_reads(tmp_path, 300, courses_per_read_task=5)) == 60
    assert len(completion_reads(tmp_path, 500, users_per_read_task=40)) == 13


def test_completion_reads_follow_the_users_to_read(tmp_path):
    assert len(completion_reads(tmp_path, 500)) == 500 // USERS_PER_COMPLETION_READ.smallest
    batches = completion_reads(tmp_path, 10_000, max_parallel_reads=4)
    assert len(batches) == 10_000 // USERS_PER_COMPLETION_READ.largest
    assert sorted(user for batch in batches for user in batch) == list(range(1, 10_001))


def test_a_read_task_gets_time_for_every_call_of_the_largest_batch_it_may_be_given():
    limits = execution_timeouts(integration(timeouts={"step_minutes": 10, "moodle_call_seconds": 6}))
    assert limits.grade_reads == timedelta(minutes=10, seconds=COURSES_PER_GRADE_READ.largest * 6)
    assert limits.completion_reads == timedelta(
        minutes=10, seconds=USERS_PER_COMPLETION_READ.largest * CALLS_PER_USER_READ * 6)
