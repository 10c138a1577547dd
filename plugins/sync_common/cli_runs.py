"""Runs that Airflow's CLI makes in its own process (``airflow dags test``, ``airflow tasks test``, ``dag.test()``).

Airflow's task runner installs a SIGTERM handler for each task (it calls the task's ``on_kill`` and goes on) and
never removes it. On a worker the task's process ends with the task, but a run made in the CLI's process keeps the
handler: SIGTERM is then ignored, also while the run waits, printing "No tasks to run", for a task's retry.
"""

from __future__ import annotations

import signal
import threading


def sigterm_ends_in_process_runs(context) -> None:
    """``on_execute_callback`` of every task: in a run made in the CLI's (or a test's) process, SIGTERM ends the
    process again, as it does before the first task; a worker's task process is left as Airflow made it."""
    from airflow.sdk.execution_time import supervisor, task_runner

    in_process = isinstance(getattr(task_runner, "SUPERVISOR_COMMS", None), supervisor.InProcessSupervisorComms)
    if in_process and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
