"""The last task of every integration's run: the run summary, the durable sync report, and the pruning of old run
directories, whatever the source system."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping

from airflow.sdk import get_current_context
from sqlalchemy import Engine

from sync_common.report_store import CourseLearners, write_run_report
from sync_common.run_files import RunPath, prune_old_runs
from sync_common.run_summary import build_run_summary, small_summary, write_run_summary


def summarize_run(integration, engine: Engine, run_dir: RunPath, course_learners: CourseLearners | None = None,
                  preview: bool = False, counted_actions: Mapping[str, Iterable[str]] | None = None,
                  targeted_records: Iterable[str] = (),
                  record_names: Callable[[RunPath, Collection[str]], Mapping[str, str]] | None = None) -> dict:
    """Summarise the run from what its steps left behind and its other tasks' states, save its report in
    ``engine`` (the integration's own database), push the small summary to XCom, and fail when a task did not
    finish, so that the run shows as failed. ``integration``: its settings (name, key, reported flows,
    retention); ``course_learners``: how the source system reads the course status from the run (None: it reads
    none); ``preview``: the run was triggered to write nothing; ``counted_actions``: the kind's actions shown
    with 0; ``targeted_records``: the record keys a targeted run was triggered to sync (empty: a whole run);
    ``record_names``: how the kind reads the names its report shows beside the records' keys (None: none)."""
    context = get_current_context()
    dag_id, ti = context["dag"].dag_id, context["ti"]
    # The runtime task instance has get_task_breadcrumbs; Airflow's RuntimeTaskInstanceProtocol does not declare it.
    breadcrumbs = ti.get_task_breadcrumbs(dag_id=dag_id, run_id=context["run_id"])  # type: ignore[attr-defined]
    others = [dict(t) for t in breadcrumbs if t["task_id"] != ti.task_id]
    dag_run = context["dag_run"]
    summary = build_run_summary(integration, context["run_id"], run_dir, others, dag_run.start_date,
                                counted_actions, getattr(dag_run, "clear_number", 0) or 0)
    summary["preview"] = preview
    summary["targeted_records"] = list(targeted_records)
    result = small_summary(summary, write_run_summary(summary, run_dir))
    write_run_report(integration, engine, dag_id, summary, run_dir, course_learners, record_names)
    prune_old_runs(integration, integration.keep_run_files_days, run_dir)
    ti.xcom_push(key="summary", value=result)
    if not summary["complete"]:
        why = "; ".join(f"{failure['task']}: {failure['error']} (owner: {failure['owner']})"
                        for failure in summary["failures"])
        raise RuntimeError(f"the run failed: {why or 'no task failed'}; not finished "
                           f"{', '.join(summary['unfinished_tasks'])}")
    return result
