"""The kinds of integration the sync report pages serve, and which integration a DAG id belongs to.

The API server has no DAG objects to ask, so each kind says how to find its integrations from a DAG id: the
DAG id prefix its DAG file gives, the folder of integration files that DAG file reads (the same environment
variable, else the same default), and the Connection of the database its runs write their reports into.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psiber.config import load_integrations
from school.config import load_school_integrations

INTEGRATIONS = Path(__file__).resolve().parents[2] / "include" / "integrations"


@dataclass(frozen=True)
class IntegrationKind:
    """One source system's integrations: ``label`` names the kind on the pages, ``record_search`` says what a
    report's records are named by (the search box's label), ``course_status`` whether its runs read results."""

    label: str
    dag_prefix: str
    folder_variable: str
    default_folder: Path
    load: Callable[[Path], tuple[dict[Path, Any], dict]]
    report_conn_id: Callable[[Any], str]
    record_search: str
    course_status: bool

    def folder(self) -> Path:
        return Path(os.environ.get(self.folder_variable, self.default_folder))


PSIBER = IntegrationKind(
    label="PSIber", dag_prefix="psiber_moodle_", folder_variable="PSIBER_MOODLE_INTEGRATIONS",
    default_folder=INTEGRATIONS, load=load_integrations, report_conn_id=lambda settings: settings.psiber_conn_id,
    record_search="Employee number or course code", course_status=True)
SCHOOL = IntegrationKind(
    label="School MIS", dag_prefix="school_moodle_", folder_variable="SCHOOL_MOODLE_INTEGRATIONS",
    default_folder=INTEGRATIONS / "school", load=load_school_integrations,
    report_conn_id=lambda settings: settings.school_conn_id, record_search="External ID or course ID number",
    course_status=False)
KINDS = (PSIBER, SCHOOL)


@dataclass(frozen=True)
class ReportedIntegration:
    """One integration file's DAG, its kind and its settings (name, key, report Connection)."""

    dag_id: str
    kind: IntegrationKind
    settings: Any

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def key(self) -> str:
        return self.settings.key

    @property
    def report_conn_id(self) -> str:
        return self.kind.report_conn_id(self.settings)


def integrations_by_dag() -> dict[str, ReportedIntegration]:
    """Every good integration file of every kind, by the DAG id its DAG file builds from it."""
    found = {}
    for kind in KINDS:
        good, _ = kind.load(kind.folder())
        for settings in good.values():
            dag_id = f"{kind.dag_prefix}{settings.key}"
            found[dag_id] = ReportedIntegration(dag_id, kind, settings)
    return found
