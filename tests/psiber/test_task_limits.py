"""Every task of the DAG has an execution_timeout sized from the work, and retries sized for a 50% fault rate."""

from datetime import timedelta

from factories import integration
from psiber.task_limits import CALLS_PER_USER_READ, execution_timeouts
from sync_common.task_failures import retry_args


def test_read_tasks_get_time_for_every_call_of_their_batch():
    limits = execution_timeouts(integration(results={"courses_per_read_task": 20, "users_per_read_task": 50},
                                            timeouts={"step_minutes": 10, "moodle_call_seconds": 6}))
    assert limits.step == timedelta(minutes=10)
    assert limits.grade_reads == timedelta(minutes=10, seconds=20 * 6)
    assert limits.completion_reads == timedelta(minutes=10, seconds=50 * CALLS_PER_USER_READ * 6)
    assert limits.population == timedelta(minutes=120)


def test_default_retries_are_four_doubling_from_a_minute_to_at_most_fifteen(monkeypatch):
    monkeypatch.delenv("MOODLE_SYNC_TASK_RETRIES")
    assert retry_args() == {"retries": 4, "retry_delay": timedelta(minutes=1), "retry_exponential_backoff": 2.0,
                            "max_retry_delay": timedelta(minutes=15)}
    monkeypatch.setenv("MOODLE_SYNC_TASK_RETRY_DELAY_SECONDS", "0")
    assert retry_args()["retry_exponential_backoff"] == 0  # retried at once (tests)


def test_every_task_of_the_dag_has_an_execution_timeout(monkeypatch, tmp_path):
    from factories import GOOD, write

    write(tmp_path, "site.yaml", GOOD + "results: {users_per_read_task: 40}\n")
    monkeypatch.setenv("PSIBER_MOODLE_INTEGRATIONS", str(tmp_path))
    from airflow.dag_processing.dagbag import DagBag
    from test_end_to_end import ROOT

    [dag] = DagBag(dag_folder=str(ROOT / "dags" / "psiber_moodle_sync.py")).dags.values()
    timeouts = {task.task_id: task.execution_timeout for task in dag.tasks}
    assert all(timeouts.values()), [task for task, limit in timeouts.items() if not limit]
    assert timeouts["read_completions"] == timedelta(minutes=30, seconds=40 * CALLS_PER_USER_READ * 10)
    assert timeouts["apply_user_changes"] == timedelta(minutes=120)
    assert timeouts["load_results"] == timedelta(minutes=30)
