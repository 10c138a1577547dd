"""The results flow's order in the DAG: grades first per user and course, completions first from a report."""

from pathlib import Path

from airflow.dag_processing.dagbag import DagBag

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "include" / "integrations" / "demo.yaml").read_text()
REPORTS = "\nmoodle_reports:\n  enrolment_results: 7\n  user_access: 8\n"


def results_dag(tmp_path, monkeypatch, text: str):
    (tmp_path / "demo.yaml").write_text(text)
    monkeypatch.setenv("PSIBER_MOODLE_INTEGRATIONS", str(tmp_path))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags["psiber_moodle_driver_training"].task_dict


def test_per_user_and_course_the_grades_are_read_first(tmp_path, monkeypatch):
    tasks = results_dag(tmp_path, monkeypatch, DEMO)
    assert tasks["plan_grade_reads"].upstream_task_ids == {"find_changed_learners"}
    assert tasks["plan_completion_reads"].upstream_task_ids == {"read_course_grades"}
    assert tasks["plan_result_changes"].upstream_task_ids == {"read_completions"}


def test_from_a_report_the_completions_are_read_first_and_grades_only_for_their_courses(tmp_path, monkeypatch):
    tasks = results_dag(tmp_path, monkeypatch, DEMO + REPORTS)
    assert tasks["plan_completion_reads"].upstream_task_ids == {"find_changed_learners"}
    assert tasks["plan_grade_reads"].upstream_task_ids == {"read_completions"}
    assert tasks["plan_grade_reads"].trigger_rule == "none_failed"  # a full read has no completion read per user
    assert tasks["plan_result_changes"].upstream_task_ids == {"read_course_grades"}
