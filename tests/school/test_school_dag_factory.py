"""The school DAG file parsed by a real DagBag: one DAG per school integration file, bad files as import errors,
synchronisation settings as schedules."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from moodle_provider.functions import required_functions
from moodle_provider.hooks.moodle import MoodleHook
from school.config import load_school_integration
from school.preflight import preflight
from sync_common.preflight import IntegrationDisabledError

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "include" / "integrations" / "school" / "greenfield_high.yaml").read_text()
SYNC_LINE = "synchronisation: enabled_snapshot_only"


def parse(folder: Path, monkeypatch) -> DagBag:
    monkeypatch.setenv("SCHOOL_MOODLE_INTEGRATIONS", str(folder))
    return DagBag(dag_folder=str(ROOT / "dags" / "school_moodle_sync.py"))


def test_the_shipped_school_file_parses_into_its_dag(monkeypatch):
    bag = parse(ROOT / "include" / "integrations" / "school", monkeypatch)
    assert bag.import_errors == {}
    dag = bag.dags["school_moodle_greenfield_high"]
    assert dag.max_active_runs == 1
    assert dag.task_dict["summarize_run"].upstream_task_ids == set(dag.task_ids) - {"summarize_run"}
    assert (dag.params["preview"], dag.params["allow_mass_changes"]) == (False, False)
    writes = ("apply_people", "apply_classes", "apply_enrolments")
    for task_id in writes:  # both plans and their guards come before any write
        assert {"plan_people", "plan_classes", "check_mass_changes"} <= \
            dag.task_dict[task_id].get_flat_relative_ids(upstream=True)


def test_each_school_task_pushes_its_return_value_alone_as_psibers_do(monkeypatch):
    dag = parse(ROOT / "include" / "integrations" / "school", monkeypatch).dags["school_moodle_greenfield_high"]
    assert dag.task_dict["plan_people"].multiple_outputs is False  # returns a dict: inferred True otherwise
    assert not [task.task_id for task in dag.tasks if task.multiple_outputs]


def test_the_dag_is_parsed_again_from_its_own_file_not_from_the_shared_builder(monkeypatch):
    dag = parse(ROOT / "include" / "integrations" / "school", monkeypatch).dags["school_moodle_greenfield_high"]
    assert dag.fileloc == str(ROOT / "dags" / "school_moodle_sync.py")


@pytest.mark.parametrize(("setting", "schedule"), [("enabled", "@daily"), ("enabled_snapshot_only", None),
                                                   ("disabled", None)])
def test_synchronisation_decides_the_schedule(tmp_path, monkeypatch, setting, schedule):
    (tmp_path / "school.yaml").write_text(DEMO.replace(SYNC_LINE, f"synchronisation: {setting}"))
    dag = parse(tmp_path, monkeypatch).dags["school_moodle_greenfield_high"]
    assert dag.schedule == schedule
    assert dag.is_paused_upon_creation is False  # a triggered run (or a preview) is not held back


def test_a_bad_school_file_is_an_import_error_naming_file_and_field(tmp_path, monkeypatch):
    (tmp_path / "good.yaml").write_text(DEMO)
    (tmp_path / "broken.yaml").write_text(DEMO.replace("Greenfield High", "Broken").replace(
        "courses: dont_delete", "courses: sometimes"))
    bag = parse(tmp_path, monkeypatch)
    assert sorted(bag.dags) == ["school_moodle_greenfield_high"]
    [message] = bag.import_errors.values()
    assert "broken.yaml" in message and "field 'deletion.courses'" in message


class _NoSite(MoodleHook):
    def get_site_info(self):
        raise AssertionError("a disabled integration must not reach Moodle")


def test_a_disabled_integration_refuses_a_run_but_not_a_preview(tmp_path):
    path = tmp_path / "school.yaml"
    path.write_text(DEMO.replace(SYNC_LINE, "synchronisation: disabled"))
    integration = load_school_integration(path)
    with pytest.raises(IntegrationDisabledError, match="preview=true"):
        preflight(integration, _NoSite("moodle_demo"), preview=False)

    needed = required_functions(integration.reported_flows)

    class Site(MoodleHook):
        def get_site_info(self):
            return {"sitename": "s", "release": "4.5", "functions": [{"name": name} for name in needed]}

    assert preflight(integration, Site("moodle_demo"), preview=True)["preview"] is True


def test_no_secret_lives_in_a_school_integration_file():
    for path in (ROOT / "include" / "integrations" / "school").glob("*.yaml"):
        settings = [line.split("#")[0] for line in path.read_text().splitlines()]
        assert not any(word in line for line in settings for word in ("token", "password")), path
