"""The results reads under faults: a fault-injecting proxy (tests/fault_proxy.py) sits between the hook and
the Moodle stand-in and spoils the read calls (5xx, resets, late answers) in a seeded pattern. What is
asked again is counted where the answers arrive, in the hook (``HookLog``): an answer the proxy passed on
after the hook gave up waiting (a busy machine, no fault) is rightly asked again.

The read steps keep what they read and, when retried, ask Moodle only for the rest; a real night
(``dag.test()``) at a 50% fault rate converges within the DAG's retries, with no duplicate and no
lost attempt.
"""

from __future__ import annotations

import json
import secrets
import stat
import time
from collections import Counter

import pytest
from fault_proxy import FaultProxy, HookLog
from sqlalchemy import create_engine
from test_end_to_end import by_number, count, demo_run  # noqa: F401 - demo_run is a fixture

from factories import integration
from moodle_provider.exceptions import MoodleTransientError
from moodle_provider.hooks.moodle import MoodleHook
from moodle_stand_in import MoodleStandIn
from moodle_stand_in.demo_site import DAY, add_demo_courses, simulate_learning
from psiber import result_sync
from psiber.demo_company import seed_demo_company
from sync_common.read_progress import PROGRESS_FOLDER
from sync_common.run_files import read_json, write_json
from sync_common.task_failures import TASK_RETRIES

READS = {"core_enrol_get_users_courses", "gradereport_user_get_grade_items",
         "core_completion_get_course_completion_status"}
SETTINGS = integration()
LEARNERS = 30


@pytest.fixture(autouse=True)
def quick_hook_retries(monkeypatch):
    monkeypatch.setattr(MoodleHook, "backoff_seconds", 0.001)


class ReadSite:
    """The demo courses and LEARNERS learners who studied, behind a fault proxy; runs one read step."""

    def __init__(self, moodle: MoodleStandIn, proxy: FaultProxy, engine, monkeypatch):
        self.moodle, self.proxy, self.engine = moodle, proxy, engine
        now = int(time.time())
        course_ids = add_demo_courses(moodle, start=now - 60 * DAY)
        users = [moodle.add_user(username=f"learner{n}@example.com", email=f"learner{n}@example.com",
                                 firstname="Learner", lastname=f"No {n}", idnumber=f"EE{n:05d}")
                 for n in range(1, LEARNERS + 1)]
        simulate_learning(moodle, course_ids, now=now)
        self.user_ids = [user["id"] for user in users]
        self.course_ids = sorted(course_ids.values())
        self.learners = {"started": now, "links": {str(user["id"]): [n, user["idnumber"]]
                                                   for n, user in enumerate(users, start=1)}}
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({
            "conn_type": "http", "host": proxy.base_url, "password": moodle.token, "extra": {"timeout": 0.3}}))

    def read(self, step: str, run_dir):
        run_dir.mkdir(exist_ok=True)
        write_json(run_dir / "learners.json", self.learners)
        write_json(run_dir / result_sync.LINKED_USERS, {"started": self.learners["started"], "user_ids": self.user_ids})
        if step == "grades":
            result_sync.read_course_grades(MoodleHook("moodle"), run_dir, self.course_ids)
            return read_json(run_dir / "grades" / f"courses-{self.course_ids[0]}.json")
        result_sync.read_completions(SETTINGS, MoodleHook("moodle"), self.engine, run_dir, self.user_ids)
        return read_json(run_dir / "completions" / f"users-{self.user_ids[0]}.json")


@pytest.fixture
def site(tmp_path, monkeypatch):
    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    seed_demo_company(engine, employees=20)
    token = secrets.token_hex(16)
    with MoodleStandIn(token) as moodle, FaultProxy(moodle.base_url, functions=READS, seed=2026) as proxy:
        yield ReadSite(moodle, proxy, engine, monkeypatch)


@pytest.fixture
def hook_log(monkeypatch):
    return HookLog(monkeypatch, READS)


def asked(exchanges) -> Counter:
    return Counter((e.wsfunction, e.params) for e in exchanges)


def test_an_answer_the_hook_gave_up_waiting_for_is_asked_again_and_counted_once(site, hook_log, tmp_path):
    """Moodle answering after the hook's timeout (0.3 s here) with no fault at all, as on a busy machine:
    the proxy passed the answer on, the hook never had it, and asks again."""
    reference = site.read("grades", tmp_path / "fault_free")
    site.proxy.exchanges.clear()
    hook_log.clear()
    site.moodle.delay_next_requests(1, 0.6)
    assert site.read("grades", tmp_path / "slow") == reference
    assert not site.proxy.faults() and max(asked(site.proxy.answered()).values()) == 2
    assert max(hook_log.answered().values()) == 1 and not hook_log.asked_again()


@pytest.mark.parametrize("step", ["completions", "grades"])
def test_a_retried_read_asks_moodle_only_for_what_its_first_try_did_not_get(site, hook_log, tmp_path, step):
    reference = site.read(step, tmp_path / "fault_free")
    everything = hook_log.answered()
    assert everything and max(everything.values()) == 1
    site.proxy.exchanges.clear()
    hook_log.clear()

    site.proxy.outage_after = len(everything) // 2  # the site goes down half-way through the first try
    run_dir = tmp_path / "run"
    with pytest.raises(MoodleTransientError, match=r"3 calls failed in a row; this try stopped; \d+ answers are "
                                                   r"kept for the task's retry"):
        site.read(step, run_dir)
    assert len(site.proxy.answered()) == len(everything) // 2
    assert len(site.proxy.faults()) == 3 * MoodleHook.max_attempts  # then it stops, not waiting out every call
    kept = list((run_dir / PROGRESS_FOLDER).iterdir())  # one file per save, each with the answers since the last
    assert kept and {stat.S_IMODE(part.stat().st_mode) for part in kept} == {0o600}
    assert stat.S_IMODE((run_dir / PROGRESS_FOLDER).stat().st_mode) == 0o700

    site.proxy.outage_after = None  # the site is back: the task's retry
    assert site.read(step, run_dir) == reference
    assert not hook_log.asked_again() and hook_log.answered() == everything
    assert not any(part.exists() for part in kept)  # read in full: a later run of the task reads afresh


def test_at_a_50_percent_fault_rate_the_reads_converge_within_the_task_retries(site, hook_log, tmp_path):
    reference = {step: site.read(step, tmp_path / "fault_free") for step in ("grades", "completions")}
    site.proxy.exchanges.clear()
    hook_log.clear()
    site.proxy.rate = 0.5
    run_dir = tmp_path / "run"
    for step in ("grades", "completions"):
        for _try in range(1 + TASK_RETRIES):
            try:
                assert site.read(step, run_dir) == reference[step]
                break
            except MoodleTransientError:
                continue
        else:
            pytest.fail(f"{step} did not converge in {1 + TASK_RETRIES} tries")
    faults = Counter(e.fault for e in site.proxy.faults())
    assert set(faults) == {"5xx", "reset", "late"} and sum(faults.values()) > 40
    assert not hook_log.asked_again() and max(hook_log.answered().values()) == 1  # none twice across the tries


@pytest.fixture
def nightly(monkeypatch):
    """The DAG's own retries (not the test suite's none), retried at once."""
    monkeypatch.setenv("MOODLE_SYNC_TASK_RETRIES", str(TASK_RETRIES))
    monkeypatch.setenv("MOODLE_SYNC_TASK_RETRY_DELAY_SECONDS", "0")


def task_tries(run_id: str) -> dict[tuple[str, int], int]:
    from airflow import settings
    from airflow.models.taskinstance import TaskInstance

    with settings.Session() as session:
        rows = session.query(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.try_number).filter(
            TaskInstance.run_id == run_id).all()
    return {(task_id, map_index): tries for task_id, map_index, tries in rows}


def test_a_night_at_a_50_percent_fault_rate_on_the_result_reads_converges_without_duplicates(
        nightly, demo_run, hook_log, monkeypatch):  # noqa: F811 - the fixture imported above
    moodle, engine = demo_run.moodle, demo_run.engine
    now = int(time.time())
    course_ids = add_demo_courses(moodle, start=now - 60 * DAY)
    with FaultProxy(moodle.base_url, functions=READS, seed=7) as proxy:
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE_DEMO", json.dumps({
            "conn_type": "http", "host": proxy.base_url, "password": moodle.token, "extra": {"timeout": 0.3}}))
        first = demo_run()
        assert first["complete"] and first["counts"]["users"]["created"] > 80

        simulate_learning(moodle, course_ids, now=now)
        proxy.exchanges.clear()
        hook_log.clear()
        proxy.rate = 0.5
        second = demo_run()
        assert second["state"] == "success" and second["complete"]
        faults = Counter(e.fault for e in proxy.faults())
        assert set(faults) == {"5xx", "reset", "late"} and sum(faults.values()) > 100
        assert {e.wsfunction for e in proxy.faults()} == READS
        assert not hook_log.asked_again()  # resumed: no read whose answer was had is asked again in the night
        assert hook_log.answered() and max(hook_log.answered().values()) == 1
        retried = {task for (task, _), tries in task_tries(second["run_id"]).items() if tries > 1}
        assert retried & {"read_course_grades", "read_completions"}  # Airflow's retries were needed, and did it

        recorded = second["counts"]["results"]["new_attempts"]
        assert recorded > 50
        assert count(engine, "SELECT COUNT(*) FROM course_attempt WHERE source = 'moodle'") == recorded
        assert count(engine, "SELECT COUNT(*) FROM course_completion") == recorded
        assert count(engine, "SELECT COUNT(*) FROM (SELECT employee_id, course_code FROM course_attempt "
                             "WHERE source = 'moodle' GROUP BY employee_id, course_code HAVING COUNT(*) > 1) d") == 0

        proxy.rate = 0.0  # a fault-free night reading everyone finds nothing the faulty night missed
        third = demo_run(full_results_sync=True)
        assert third["counts"]["results"]["new_attempts"] == 0
        assert third["counts"]["results"]["already_recorded"] == recorded
    assert not by_number(second, "failed", "results")


def test_a_retried_moodle_user_extract_asks_only_for_the_look_ups_its_first_try_did_not_get(tmp_path, monkeypatch):
    from psiber import user_sync
    from psiber.psiber_db import create_schema

    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    create_schema(engine)
    targets = [{"employee_id": n, "idnumber": f"E{n:04d}", "username": f"u{n}@example.com",
                "email": f"u{n}@example.com", "email_as_given": f"u{n}@example.com"} for n in range(1, 451)]
    write_json(tmp_path / "target_users.json", targets)
    hook_log = HookLog(monkeypatch, {"core_user_get_users_by_field"})
    token = secrets.token_hex(16)
    with MoodleStandIn(token) as moodle, \
            FaultProxy(moodle.base_url, functions={"core_user_get_users_by_field"}, seed=3) as proxy:
        known = [moodle.add_user(username=f"u{n}@example.com", email=f"u{n}@example.com", idnumber=f"E{n:04d}")
                 for n in (1, 250, 450)]
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "http", "host": proxy.base_url,
                                                              "password": token, "extra": {"timeout": 0.3}}))
        proxy.outage_after = 4  # 9 look-ups in all (3 fields × 3 chunks of 200): the site goes down after 4
        with pytest.raises(MoodleTransientError, match="answers are kept for the task's retry"):
            user_sync.extract_moodle_users(SETTINGS, MoodleHook("moodle"), engine, tmp_path)
        assert len(proxy.answered()) == 4
        proxy.outage_after = None
        assert user_sync.extract_moodle_users(SETTINGS, MoodleHook("moodle"), engine, tmp_path) == {"moodle_users": 3}
    assert not hook_log.asked_again() and sorted(hook_log.answered().values()) == [1] * 9
    assert sorted(u["id"] for u in read_json(tmp_path / "moodle_users.json")) == sorted(u["id"] for u in known)
