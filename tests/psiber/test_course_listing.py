"""Course status lists every course a run read: a course whose learners the totals leave out says why."""

from __future__ import annotations

from types import SimpleNamespace
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine

from psiber.course_status import HIDDEN, NO_COMPLETION_TRACKING, course_learners_of_run, not_counted
from sync_common import report_store
from sync_common.run_files import write_json


def test_a_course_without_completion_tracking_or_hidden_is_not_counted_and_says_why():
    assert not_counted({"enablecompletion": 1, "visible": 1}) == ""
    assert not_counted({"enablecompletion": 0, "visible": 1}) == NO_COMPLETION_TRACKING
    assert not_counted({"enablecompletion": 1, "visible": 0}) == HIDDEN
    assert not_counted({"enablecompletion": 0, "visible": 0}) == NO_COMPLETION_TRACKING  # the first thing to fix
    assert "completion tracking is off" in NO_COMPLETION_TRACKING and "Moodle administrator" in HIDDEN


def test_a_summarised_run_lists_every_course_it_read_but_the_site(tmp_path):
    write_json(tmp_path / "moodle_courses.json", [
        {"id": 1, "format": "site", "shortname": "site"},
        {"id": 7, "shortname": "DRV-101", "idnumber": "DRV-101", "fullname": "Defensive Driving",
         "enablecompletion": 1, "visible": 1},
        {"id": 12, "shortname": "ONB-1", "idnumber": "ONB-1", "fullname": "Company Induction",
         "enablecompletion": 0, "visible": 1},
        {"id": 13, "shortname": "DRV-OLD", "idnumber": "DRV-OLD", "fullname": "Legacy Driving Theory",
         "enablecompletion": 1, "visible": 0}])
    write_json(tmp_path / "learners.json", {"links": {}, "course_ids": [7, 12, 13]})
    engine = create_engine(f"sqlite:///{tmp_path / 'reports.db'}")
    report_store.create_report_schema(engine)
    integration = SimpleNamespace(key="driver_training", zone=ZoneInfo("Africa/Johannesburg"), pass_result="Competent")
    reads = course_learners_of_run(integration, engine, {"run_id": "run1", "tasks": []}, tmp_path)
    assert reads.courses == [
        {"moodle_course_id": 7, "course_code": "DRV-101", "course_name": "Defensive Driving", "not_counted": ""},
        {"moodle_course_id": 12, "course_code": "ONB-1", "course_name": "Company Induction",
         "not_counted": NO_COMPLETION_TRACKING},
        {"moodle_course_id": 13, "course_code": "DRV-OLD", "course_name": "Legacy Driving Theory",
         "not_counted": HIDDEN}]
    (tmp_path / "learners.json").unlink()  # a run that did not get as far as reading results
    assert course_learners_of_run(integration, engine, {"run_id": "run2", "tasks": []}, tmp_path).courses is None
