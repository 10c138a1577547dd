"""The registry of integration kinds: each source system says, once, how its integrations are found and named.

A kind registers itself in its own package, in a module named ``kind.py`` next to its flows
(``KIND = register(IntegrationKind(...))``). Its DAG file builds its DAGs from that kind
(``sync_common.dag_builder``) and the UI plugin finds every kind with ``registered_kinds()``, which imports
the ``kind.py`` of every package beside this one: a new source system is a folder of its own with its
``kind.py``, and nothing here changes. The API server has no DAG objects to ask, so a kind also says how to find
its integrations from a DAG id: the DAG id prefix, the folder of integration files (an environment variable,
else a default folder) and the settings field naming the Connection of the database its runs report into.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sync_common.settings_files import load_settings_file, load_settings_folder

KIND_MODULE = "kind"
_PACKAGES = Path(__file__).resolve().parents[1]
_REGISTERED: dict[str, IntegrationKind] = {}


@dataclass(frozen=True)
class IntegrationKind:
    """One source system's integrations.

    ``label`` names the kind on the report pages and in its DAGs' descriptions; ``dag_prefix`` starts every DAG
    id of the kind (the integration's key follows); ``folder_variable`` names the environment variable of the
    folder of integration files, ``default_folder`` is used without it; ``settings`` is the kind's settings
    model (an ``IntegrationSettings``), ``config_error`` the error naming a bad file and ``config_owner`` who
    fixes one; ``report_conn_field`` is the settings field holding the Connection id of the database its runs
    write their reports into; ``record_label`` says what a report's records are named by (the search box's
    label); ``course_status`` whether its runs read course results (the course status tab); ``record_names`` reads
    a run's directory for the names shown beside its records' keys, of the keys asked for
    (``sync_common.record_names``; None: none)."""

    label: str
    dag_prefix: str
    folder_variable: str
    default_folder: Path
    settings: type[BaseModel]
    config_error: type[ValueError]
    config_owner: str
    report_conn_field: str
    record_label: str
    course_status: bool = False
    counted_actions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    record_names: Callable[[Any, Collection[str]], Mapping[str, str]] | None = None

    def folder(self) -> Path:
        return Path(os.environ.get(self.folder_variable, self.default_folder))

    def load_file(self, path: Path) -> Any:
        """One integration file, checked; a bad one raises ``config_error`` naming the file, field and owner."""
        return load_settings_file(path, self.settings, self.config_error, self.config_owner)

    def load(self, folder: Path | None = None) -> tuple[dict[Path, Any], dict[Path, ValueError]]:
        """The good integration files of ``folder`` (default: the kind's folder) and, apart, the bad ones' errors."""
        return load_settings_folder(self.folder() if folder is None else folder, self.load_file, self.config_error,
                                    self.config_owner)

    def dag_id(self, settings: Any) -> str:
        return f"{self.dag_prefix}{settings.key}"

    def report_conn_id(self, settings: Any) -> str:
        return getattr(settings, self.report_conn_field)

    @property
    def invalid_files_dag_id(self) -> str:
        """The DAG that fails, naming the files, when integration files of the kind cannot be used."""
        return f"{self.dag_prefix}invalid_integration_files"


def register(kind: IntegrationKind) -> IntegrationKind:
    """Add a kind to the registry (once per DAG prefix: two kinds may not build the same DAG ids)."""
    known = _REGISTERED.get(kind.dag_prefix)
    if known is not None and known != kind:
        raise ValueError(f"DAG id prefix '{kind.dag_prefix}' is registered by '{known.label}' already")
    _REGISTERED[kind.dag_prefix] = kind
    return kind


def registered_kinds(packages: Path = _PACKAGES) -> tuple[IntegrationKind, ...]:
    """Every kind whose package in ``packages`` (the folder on ``sys.path`` holding this package) has a
    ``kind.py``, in the order of their packages' names."""
    for module in sorted(packages.glob(f"*/{KIND_MODULE}.py")):
        import_module(f"{module.parent.name}.{KIND_MODULE}")
    return tuple(sorted(_REGISTERED.values(), key=lambda kind: kind.dag_prefix))


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
        good, _ = kind.load()
        for settings in good.values():
            dag_id = kind.dag_id(settings)
            found[dag_id] = ReportedIntegration(dag_id, kind, settings)
    return found
