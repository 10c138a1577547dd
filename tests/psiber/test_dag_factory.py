"""The DAG file parsed by a real DagBag: one DAG per integration file, bad files as import errors."""

from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "include" / "integrations" / "demo.yaml").read_text()


def parse(folder: Path, monkeypatch) -> DagBag:
    monkeypatch.setenv("PSIBER_MOODLE_INTEGRATIONS", str(folder))
    return DagBag(dag_folder=str(ROOT / "dags"))


def test_shipped_integrations_parse_into_one_dag_each(monkeypatch):
    bag = parse(ROOT / "include" / "integrations", monkeypatch)
    assert bag.import_errors == {}
    dag = bag.dags["psiber_moodle_driver_training"]
    assert dag.max_active_runs == 1
    assert dag.schedule == "@daily"
    assert [t.task_id for t in dag.topological_sort()][-1] == "summarize_run"
    assert dag.task_dict["summarize_run"].upstream_task_ids == set(dag.task_ids) - {"summarize_run"}
    assert dag.params["allow_mass_suspension"] is False


def test_a_record_step_runs_after_its_apply_failed_but_not_when_the_apply_never_started(monkeypatch):
    """all_done_min_one_success over the apply and the apply's own input: the input failed (or never ran), so did
    the apply, and there is nothing to record; nor may the steps after the record step run."""
    dag = parse(ROOT / "include" / "integrations", monkeypatch).dags["psiber_moodle_driver_training"]
    for record, apply, its_input in (("record_user_links", "apply_user_changes", "plan_user_changes"),
                                     ("record_ess_requests", "enrol_ess_requests", "refresh_ess_offers")):
        assert dag.task_dict[apply].upstream_task_ids == {its_input}
        assert dag.task_dict[record].upstream_task_ids == {apply, its_input}
        assert dag.task_dict[record].trigger_rule == "all_done_min_one_success"
    assert {task.trigger_rule for task in dag.tasks} == {"all_success", "all_done_min_one_success", "none_failed",
                                                         "all_done"}
    assert [task.task_id for task in dag.tasks if task.trigger_rule == "all_done"] == ["summarize_run"]


def test_a_bad_file_is_an_import_error_naming_file_and_field_and_others_still_load(tmp_path, monkeypatch):
    (tmp_path / "demo.yaml").write_text(DEMO)
    (tmp_path / "second.yaml").write_text(DEMO.replace("Driver Training", "Forklift"))
    (tmp_path / "broken.yaml").write_text(DEMO.replace("Driver Training", "Broken").replace(
        "pseudo_email_domain: jhb.com", "pseudo_email_domain: 'not a domain'"))
    bag = parse(tmp_path, monkeypatch)
    assert sorted(d for d in bag.dags if d.startswith("psiber_")) == ["psiber_moodle_driver_training",
                                                                      "psiber_moodle_forklift"]
    [message] = bag.import_errors.values()
    assert "broken.yaml" in message and "field 'pseudo_email_domain'" in message


def test_a_disabled_integration_has_no_schedule_and_starts_paused(tmp_path, monkeypatch):
    (tmp_path / "demo.yaml").write_text(DEMO.replace("enabled: true", "enabled: false"))
    dag = parse(tmp_path, monkeypatch).dags["psiber_moodle_driver_training"]
    assert dag.schedule is None
    assert dag.is_paused_upon_creation is True


@pytest.mark.parametrize("secret_word", ["token", "password:"])
def test_no_secret_lives_in_an_integration_file(secret_word):
    for path in (ROOT / "include" / "integrations").glob("*.yaml"):
        settings = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
        assert not any(secret_word in line for line in settings), path


def test_only_the_configured_flows_become_tasks(tmp_path, monkeypatch):
    (tmp_path / "demo.yaml").write_text(DEMO.replace("flows: [users, courses, results, ess]", "flows: [courses]"))
    dag = parse(tmp_path, monkeypatch).dags["psiber_moodle_driver_training"]
    assert set(dag.task_ids) == {"check_moodle_site", "extract_moodle_courses", "plan_course_changes",
                                 "load_courses", "discover_custom_fields", "summarize_run"}


def test_each_task_pushes_its_return_value_alone_not_each_key_of_it_as_well(monkeypatch):
    dag = parse(ROOT / "include" / "integrations", monkeypatch).dags["psiber_moodle_driver_training"]
    assert dag.task_dict["read_course_grades"].multiple_outputs is False  # returns a dict: inferred True otherwise
    assert not [task.task_id for task in dag.tasks if task.multiple_outputs]
