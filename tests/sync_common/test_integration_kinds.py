"""The registry of integration kinds: a kind is found by its package's kind.py alone, and every kind's settings
stand on the one base model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sync_common import integration_kinds
from sync_common.integration_kinds import IntegrationKind, register, registered_kinds
from sync_common.settings_files import IntegrationSettings

KIND_FILE = '''
from pathlib import Path

from sync_common.integration_kinds import IntegrationKind, register
from sync_common.settings_files import IntegrationSettings


class CatalogueSettings(IntegrationSettings):
    catalogue_conn_id: str


KIND = register(IntegrationKind(
    label="Catalogue", dag_prefix="catalogue_moodle_", folder_variable="CATALOGUE_INTEGRATIONS",
    default_folder=Path(__file__).parent, settings=CatalogueSettings, config_error=ValueError,
    config_owner="the catalogue's maintainer", report_conn_field="catalogue_conn_id", record_label="Item code"))
'''


def test_every_kind_of_the_project_is_registered_and_its_settings_extend_the_base_model():
    kinds = {kind.dag_prefix: kind for kind in registered_kinds()}
    assert {"psiber_moodle_", "school_moodle_"} <= set(kinds)
    assert all(issubclass(kind.settings, IntegrationSettings) for kind in kinds.values())


def test_a_new_kind_is_a_package_with_its_kind_py_and_nothing_else_changes(tmp_path, monkeypatch):
    (tmp_path / "catalogue").mkdir()
    (tmp_path / "catalogue" / "__init__.py").write_text("")
    (tmp_path / "catalogue" / "kind.py").write_text(KIND_FILE)
    (tmp_path / "catalogue" / "books.yaml").write_text("name: Books\nmoodle_conn_id: moodle\ncatalogue_conn_id: db\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(integration_kinds, "_REGISTERED", dict(integration_kinds._REGISTERED))  # this test's alone
    try:
        [kind] = [kind for kind in registered_kinds(tmp_path) if kind.label == "Catalogue"]
        good, bad = kind.load()
        assert [kind.dag_id(settings) for settings in good.values()] == ["catalogue_moodle_books"] and not bad
        assert kind.report_conn_id(next(iter(good.values()))) == "db"
    finally:
        sys.modules.pop("catalogue.kind", None)
        sys.modules.pop("catalogue", None)


def test_two_kinds_may_not_build_the_same_dag_ids():
    [psiber] = [kind for kind in registered_kinds() if kind.dag_prefix == "psiber_moodle_"]
    other = IntegrationKind(label="Other", dag_prefix=psiber.dag_prefix, folder_variable="X",
                            default_folder=Path(), settings=IntegrationSettings, config_error=ValueError,
                            config_owner="", report_conn_field="x", record_label="")
    with pytest.raises(ValueError, match="'psiber_moodle_' is registered by 'PSIber' already"):
        register(other)
