"""How every integration kind's DAG file builds its DAGs: one DAG per good integration file, one failing DAG naming
the bad ones, and the same run around the kind's own steps.

A DAG file only wires its kind's steps (``wire``, given an ``IntegrationRun``) and says how its settings make a
DAG (``options``, a ``DagOptions``); this module adds what every run has: retries, timeouts and task callbacks
(``task_defaults``), the step decorator (``step``) and the last task, ``summarize_run``, after all others.
Heavy modules (the Moodle client, the report tables) are imported inside task bodies, not when the DAG file is
parsed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task

from sync_common.cli_runs import sigterm_ends_in_process_runs
from sync_common.config_errors import config_error_dag
from sync_common.integration_kinds import IntegrationKind
from sync_common.moodle_calls import call_recording_callbacks, counted
from sync_common.notifications import run_callbacks
from sync_common.run_files import RunPath, run_directory
from sync_common.task_failures import fail_fast_unless_transient, retry_args
from sync_common.task_memory import allocate_arrow_from_the_system

START_DATE = datetime(2026, 1, 1)


def step(python_callable: Callable | None = None, /, **task_args: Any):
    """``@step`` or ``@step(trigger_rule=...)``: a step of a flow as a TaskFlow task. Its XCom is its return value
    alone (``multiple_outputs`` off: a returned dict's keys are not pushed one by one as well, each one more call
    to Airflow's API and row in its database), and a failure retrying cannot mend fails at once
    (``fail_fast_unless_transient``). pyarrow allocates from the C library in its process (``task_memory``)."""

    def decorate(function: Callable):
        @functools.wraps(function)
        def in_task_process(*args: Any, **kwargs: Any):
            allocate_arrow_from_the_system()
            return function(*args, **kwargs)

        return task(multiple_outputs=False, **task_args)(fail_fast_unless_transient(in_task_process))

    return decorate if python_callable is None else decorate(python_callable)


@dataclass(frozen=True)
class IntegrationRun:
    """What a step of one integration's DAG reaches while it runs: its settings, its integration file, and the
    run's Moodle hook, database, run id and run directory."""

    kind: IntegrationKind
    integration: Any
    source: Path

    def moodle(self):
        """The integration's Moodle hook, its calls counted for the run summary."""
        from moodle_provider.hooks.moodle import MoodleHook

        return counted(MoodleHook(self.integration.moodle_conn_id))

    def database(self):
        """The kind's database of this integration: its source records, links and reports."""
        from sync_common.database import engine_from_connection

        return engine_from_connection(self.kind.report_conn_id(self.integration))

    def run_id(self) -> str:
        return get_current_context()["run_id"]

    def params(self) -> dict[str, Any]:
        """The run's params: the values it was triggered with, each param's default where none was given."""
        return get_current_context()["params"]

    def run_dir(self) -> RunPath:
        return run_directory(self.integration, self.run_id())


@dataclass(frozen=True)
class DagOptions:
    """How one integration's settings shape its DAG. ``paused``: paused when first created; ``preview_param``:
    the param that makes a run write nothing (its report is marked a preview);
    ``course_learners``: how the kind reads the course status of a summarised run (``report_store``), None when its
    runs read no results."""

    schedule: str | None
    execution_timeout: timedelta
    paused: bool = False
    tags: tuple[str, ...] = ()
    params: dict[str, Param] = field(default_factory=dict)
    preview_param: str | None = None
    course_learners: Callable | None = None


def task_defaults(run: IntegrationRun, options: DagOptions) -> dict:
    """Every task's ``default_args``: retries (``retry_args``), its execution timeout, and the task callbacks
    (each try's Moodle calls recorded however it ends; why a task failed, for the run's report; a run in the
    CLI's process stopped by SIGTERM)."""
    def run_dir_of(run_id: str):
        return run_directory(run.integration, run_id)

    def record_failure(context) -> None:
        from sync_common.task_errors import record_failure as record  # imports the Moodle client's errors

        record(context, run_dir_of(context["run_id"]))

    callbacks = call_recording_callbacks(run_dir_of)
    return {**retry_args(), "execution_timeout": options.execution_timeout, **callbacks,
            "on_failure_callback": [callbacks["on_failure_callback"], record_failure],
            "on_execute_callback": sigterm_ends_in_process_runs}


def build_dag(run: IntegrationRun, options: DagOptions, wire: Callable[[IntegrationRun], None], dag_file: str,
              doc_md: str | None = None) -> DAG:
    """One integration's DAG: ``wire`` adds the kind's steps, then ``summarize_run`` follows all of them.
    ``dag_file``: the DAG file the DAG is parsed from again by workers."""
    integration, kind = run.integration, run.kind
    notified = run_callbacks(integration)  # failed runs and owners' problem records, told by e-mail
    with DAG(
        dag_id=kind.dag_id(integration),
        description=f"{kind.label} / Moodle: {integration.name} ({run.source.name})",
        schedule=options.schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=options.paused,
        tags=list(options.tags),
        params=options.params,
        default_args=task_defaults(run, options),
        on_failure_callback=notified["on_failure_callback"],
        on_success_callback=notified["on_success_callback"],
        doc_md=doc_md,
    ) as built:
        built.fileloc = dag_file
        wire(run)
        summary = _summarize_step(run, options)().operator
        summary.set_upstream([other for other in built.tasks if other is not summary])  # waits for all
    return built


def _summarize_step(run: IntegrationRun, options: DagOptions):
    @step(trigger_rule="all_done", retries=0)
    def summarize_run() -> dict:
        from sync_common.summarize import summarize_run as summarize
        from sync_common.targeted_records import as_triggered

        preview = bool(run.params().get(options.preview_param, False)) if options.preview_param else False
        return summarize(run.integration, run.database(), run.run_dir(), options.course_learners, preview,
                         run.kind.counted_actions, as_triggered(run.params()), run.kind.record_names)

    return summarize_run


def build_dags(kind: IntegrationKind, options: Callable[[Any], DagOptions], wire: Callable[[IntegrationRun], None],
               namespace: dict[str, Any]) -> dict[str, DAG]:
    """Every DAG of the kind, put in ``namespace`` (the DAG file's ``globals()``, where the DAG processor finds
    them): one per good integration file, and one that fails naming the files that cannot be used."""
    good, bad = kind.load()
    dags = {}
    for source, integration in good.items():
        run = IntegrationRun(kind, integration, source)
        dags[kind.dag_id(integration)] = build_dag(run, options(integration), wire, namespace["__file__"],
                                                   namespace.get("__doc__"))
    if bad:
        dags[kind.invalid_files_dag_id] = config_error_dag(kind.invalid_files_dag_id, bad)
    namespace.update(dags)
    return dags
