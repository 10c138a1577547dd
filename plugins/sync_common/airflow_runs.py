"""What Airflow itself says of an integration's runs, read by the report pages on the API server: a run's state now
(running again after a Clear), its note and logical date, who cleared it and when, and when the next scheduled run
starts. A report outlives its Airflow run (deleted, or in another deployment's database): then nothing is found and
the pages show what the report kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

CLEAR_EVENTS = ("post_clear_task_instances", "clear_dag_run", "clear_dag_runs")  # Airflow's audit log names


def runs(dag_id: str, run_ids: Iterable[str]) -> dict[str, dict]:
    """Per run id Airflow still holds: {state, note, logical_date, run_after}."""
    from airflow.models.dagrun import DagRun, DagRunNote
    from airflow.utils.session import create_session

    run_ids = list(run_ids)
    if not run_ids:
        return {}
    query = (select(DagRun.run_id, DagRun.state, DagRun.logical_date, DagRun.run_after, DagRunNote.content)
             .outerjoin(DagRunNote, DagRunNote.dag_run_id == DagRun.id)
             .where(DagRun.dag_id == dag_id, DagRun.run_id.in_(run_ids)))
    try:
        with create_session() as session:
            return {run_id: {"state": str(state), "note": note or "", "logical_date": logical_date,
                             "run_after": run_after}
                    for run_id, state, logical_date, run_after, note in session.execute(query)}
    except SQLAlchemyError as error:
        log.warning("Airflow's runs of %s cannot be read (%s): the report shows what it kept", dag_id, error)
        return {}


def clears(dag_id: str, run_id: str) -> list[dict]:
    """Each Clear of the run Airflow's audit log holds, oldest first: {at, by}."""
    from airflow.models.log import Log
    from airflow.utils.session import create_session

    query = (select(Log.dttm, Log.owner).where(Log.dag_id == dag_id, Log.run_id == run_id,
                                               Log.event.in_(CLEAR_EVENTS)).order_by(Log.dttm))
    try:
        with create_session() as session:
            return [{"at": at, "by": by or ""} for at, by in session.execute(query)]
    except SQLAlchemyError as error:
        log.warning("Airflow's audit log of %s cannot be read (%s)", dag_id, error)
        return []


def next_run(dag_id: str) -> datetime | None:
    """When the DAG's next scheduled run starts; None when paused or not scheduled."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    try:
        with create_session() as session:
            found = session.execute(select(DagModel.is_paused, DagModel.next_dagrun_create_after)
                                    .where(DagModel.dag_id == dag_id)).first()
    except SQLAlchemyError as error:
        log.warning("Airflow's DAG %s cannot be read (%s)", dag_id, error)
        return None
    return None if found is None or found[0] else found[1]
