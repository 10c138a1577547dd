"""The school's enrolment read under faults: a fault-injecting proxy (tests/fault_proxy.py) sits between the hook and
the Moodle stand-in; a retried read asks Moodle only for the courses its first try did not get."""

from __future__ import annotations

import json
import secrets
import stat

import pytest
from fault_proxy import FaultProxy, HookLog

from moodle_provider.exceptions import MoodleTransientError
from moodle_provider.hooks.moodle import MoodleHook
from moodle_stand_in import MoodleStandIn
from school.config import SchoolIntegration
from school.enrolment_sync import read_enrolments
from sync_common.read_progress import PROGRESS_FOLDER
from sync_common.run_files import read_json, write_json

READ = "core_enrol_get_enrolled_users"
COURSES = 12
SETTINGS = SchoolIntegration.model_validate({"name": "Reads", "moodle_conn_id": "moodle_reads", "school_conn_id": "s",
                                             "group_types": {"Subject": {"provisioning": "enabled",
                                                                         "category": "CLASSES"}}})


@pytest.fixture(autouse=True)
def quick_hook_retries(monkeypatch):
    monkeypatch.setattr(MoodleHook, "backoff_seconds", 0.001)


def test_a_retried_enrolment_read_asks_moodle_only_for_the_courses_its_first_try_did_not_get(tmp_path, monkeypatch):
    hook_log = HookLog(monkeypatch, {READ})  # what reached the hook: the proxy cannot tell an answer it gave late
    token = secrets.token_hex(16)
    with MoodleStandIn(token) as moodle, FaultProxy(moodle.base_url, functions={READ}, seed=11) as proxy:
        category = moodle.add_category("Classes")["id"]
        teacher = moodle.add_user(username="teacher", idnumber="T1")["id"]
        provisioned = {}
        for n in range(COURSES):
            course = moodle.add_course(f"C{n}", categoryid=category, idnumber=f"CLASS-{n}")["id"]
            provisioned[f"CLASS-{n}"] = course
            moodle.enrol(teacher, course, "editingteacher")
            for s in range(n % 3 + 1):
                moodle.enrol(moodle.add_user(username=f"s{n}-{s}", idnumber=f"S{n}-{s}")["id"], course)
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE_READS", json.dumps({
            "conn_type": "http", "host": proxy.base_url, "password": token, "extra": {"timeout": 0.3}}))
        runs = {name: tmp_path / name for name in ("fault_free", "run")}
        for run_dir in runs.values():
            run_dir.mkdir()
            write_json(run_dir / "outcomes/classes.plan.json", {"provisioned": provisioned})

        reference = read_enrolments(SETTINGS, MoodleHook("moodle_reads"), runs["fault_free"])
        everything = hook_log.answered()
        assert len(everything) == COURSES and max(everything.values()) == 1
        proxy.exchanges.clear()
        hook_log.clear()

        proxy.outage_after = COURSES // 2  # the site goes down half-way through the first try
        with pytest.raises(MoodleTransientError, match=r"3 calls failed in a row; this try stopped; 6 answers are "
                                                       r"kept for the task's retry"):
            read_enrolments(SETTINGS, MoodleHook("moodle_reads"), runs["run"])
        assert len(proxy.answered()) == COURSES // 2 and not (runs["run"] / "school_enrolled.json").exists()
        assert len(proxy.faults()) == 3 * MoodleHook.max_attempts  # then it stops, not waiting out every call
        kept = list((runs["run"] / PROGRESS_FOLDER).iterdir())
        assert kept and {stat.S_IMODE(part.stat().st_mode) for part in kept} == {0o600}
        assert stat.S_IMODE((runs["run"] / PROGRESS_FOLDER).stat().st_mode) == 0o700

        proxy.outage_after = None  # the site is back: the task's retry
        assert read_enrolments(SETTINGS, MoodleHook("moodle_reads"), runs["run"]) == reference
    assert not hook_log.asked_again() and hook_log.answered() == everything
    assert read_json(runs["run"] / "school_enrolled.json") == read_json(runs["fault_free"] / "school_enrolled.json")
    assert not any(part.exists() for part in kept)  # read in full: a later run of the task reads afresh
