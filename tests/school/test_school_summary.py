"""A school run's summary shows the school's flows only: none of PSIber's (its field matching included)."""

from __future__ import annotations

from factories import GOOD, write
from psiber.config import load_integration
from psiber.kind import KIND as PSIBER
from school.config import SchoolIntegration
from sync_common.run_files import write_json
from sync_common.run_summary import build_run_summary

SCHOOL = SchoolIntegration.model_validate({
    "name": "Greenfield High", "moodle_conn_id": "moodle_x", "school_conn_id": "school_x",
    "group_types": {"Subject": {"provisioning": "enabled", "category": "SUBJ"}}})


def outcome(record: str, action: str, flow: str) -> dict:
    return {"record": record, "action": action, "reason": "", "owner": "", "flow": flow}


def test_a_school_summary_counts_people_classes_and_enrolments_and_nothing_of_psibers(tmp_path):
    write_json(tmp_path / "outcomes/people.plan.json", {"outcomes": [outcome("S1", "created", "people")]})
    write_json(tmp_path / "outcomes/classes.plan.json", {"outcomes": [outcome("SUB-1", "created", "classes")]})
    write_json(tmp_path / "outcomes/enrolments.plan.json", {"outcomes": [outcome("S1 in SUB-1", "enrolled",
                                                                              "enrolments")]})
    counts = build_run_summary(SCHOOL, "run-1", tmp_path, [])["counts"]
    assert counts == {"people": {"created": 1}, "classes": {"created": 1}, "enrolments": {"enrolled": 1}}


def test_a_psiber_summary_keeps_its_field_matching_row(tmp_path):
    psiber = load_integration(write(tmp_path, "a.yaml", GOOD))
    counts = build_run_summary(psiber, "run-1", tmp_path, [], counted_actions=PSIBER.counted_actions)["counts"]
    assert counts["fields"] == {"warning": 0} and not {"people", "classes", "enrolments"} & counts.keys()
