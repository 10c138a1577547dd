"""Turns bad integration files into Airflow import errors without hiding the good integrations."""

from __future__ import annotations

from pathlib import Path

from airflow.sdk.bases.timetable import BaseTimetable
from airflow.sdk.exceptions import AirflowTimetableInvalid

from psiber.config import IntegrationConfigError


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


def describe_config_errors(errors: dict[Path, IntegrationConfigError]) -> str:
    return f"{len(errors)} integration file(s) cannot be used: " + " | ".join(str(e) for e in errors.values())
