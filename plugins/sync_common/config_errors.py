"""Turns bad integration files into Airflow import errors without hiding the good integrations."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG
from airflow.sdk.bases.timetable import BaseTimetable
from airflow.sdk.exceptions import AirflowTimetableInvalid


class ConfigErrorTimetable(BaseTimetable):
    """Schedule of a placeholder DAG that always fails validation with the files' errors.

    The DagBag validates each DAG of a file separately and records a failure as the file's
    import error, so the UI shows which integration file is wrong and which field, while
    the DAGs built from the good files are still loaded.
    """

    can_be_scheduled = False

    def __init__(self, message: str) -> None:
        self.message = message

    def validate(self) -> None:
        raise AirflowTimetableInvalid(self.message)


def describe_config_errors(errors: dict[Path, ValueError]) -> str:
    return f"{len(errors)} integration file(s) cannot be used: " + " | ".join(str(e) for e in errors.values())


def config_error_dag(dag_id: str, errors: dict[Path, ValueError]) -> DAG:
    """The placeholder DAG whose import error lists the bad integration files of one folder."""
    message = describe_config_errors(errors)
    return DAG(dag_id=dag_id, schedule=ConfigErrorTimetable(message), start_date=datetime(2026, 1, 1),
               description=message[:200])
