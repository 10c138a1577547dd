"""A kind of integration the sync report pages serve, and which integration a DAG id belongs to.

The API server has no DAG objects to ask, so each kind says how to find its integrations from a DAG id: the
DAG id prefix its DAG file gives, the folder of integration files that DAG file reads (the same environment
variable, else the same default), and the Connection of the database its runs write their reports into. The
kinds themselves are named where the source systems meet: the Airflow UI plugin (``psiber_moodle_sync_report``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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


def integrations_by_dag(kinds: Iterable[IntegrationKind]) -> dict[str, ReportedIntegration]:
    """Every good integration file of every kind, by the DAG id its DAG file builds from it."""
    found = {}
    for kind in kinds:
        good, _ = kind.load(kind.folder())
        for settings in good.values():
            dag_id = f"{kind.dag_prefix}{settings.key}"
            found[dag_id] = ReportedIntegration(dag_id, kind, settings)
    return found
