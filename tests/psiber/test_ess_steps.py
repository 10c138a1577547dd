"""The ESS enrolment step against the Moodle stand-in and a SQLite PSIber: batches within the site's limits,
a refused enrolment isolated from its batch, a refusal of the site's stopping with the requests kept pending."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException
from sqlalchemy import create_engine, text

from factories import MOODLE_TOKEN, integration
from moodle_provider.form_encoding import flatten_params
from moodle_provider.functions import functions_of
from moodle_provider.hooks.moodle import MoodleHook
from moodle_stand_in import MoodleStandIn
from psiber import course_sync, ess_sync
from psiber.demo_company import seed_demo_company
from psiber.preflight import preflight
from psiber.psiber_db import select_employees, select_user_links, upsert_user_links
from sync_common.database import sql
from sync_common.run_files import read_json, write_frame, write_json
from sync_common.task_failures import fail_fast_unless_transient


def hook() -> MoodleHook:
    return MoodleHook("moodle", backoff_seconds=0.01)


class Night:
    """A PSIber company whose active employees all have Moodle accounts, two offered courses (one without a
    manual enrolment method), and the run directory as the users and courses flows leave it."""

    def __init__(self, moodle: MoodleStandIn, tmp_path, employees: int = 40, **ess):
        self.moodle, self.run_dir = moodle, tmp_path
        self.engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
        seed_demo_company(self.engine, employees=employees)
        staff = moodle.add_category("Staff Development")["id"]
        self.open = moodle.add_course("OPEN", "Open course", categoryid=staff)["id"]
        self.closed = moodle.add_course("NO-MANUAL", "No manual enrolment", categoryid=staff)["id"]
        moodle.set_manual_enrolment(self.closed, "absent")
        self.settings = integration(flows=["users", "courses", "ess"], moodle_max_input_vars=1000,
                                    ess={"offers": [{"categories": ["Staff Development"]}], **ess})
        extract = select_employees(self.engine, None)
        write_frame(tmp_path / "employees.parquet", extract)
        active = extract[(extract["employment_status"] == "Active") & extract["known_payroll_code"].notna()]
        self.active = [int(e) for e in active["employee_id"]]
        self.users = {e: moodle.add_user(username=f"user{e}@example.com", email=f"user{e}@example.com",
                                         firstname="A", lastname="B", idnumber=f"EE{e:05d}")["id"]
                      for e in self.active}
        upsert_user_links(self.engine, self.settings.key,
                          [(e, user, f"user{e}@example.com") for e, user in self.users.items()])
        course_sync.extract_moodle_courses(hook(), tmp_path)
        ess_sync.refresh_ess_offers(self.settings, self.engine, tmp_path, "run-1")

    def request(self, employee_id: int, course_id: int, at: str = "2026-11-20 08:00:00") -> None:
        with self.engine.begin() as connection:
            connection.execute(text(sql("ess_insert_request")), {
                "integration_name": self.settings.key, "employee_id": employee_id, "moodle_course_id": course_id,
                "requested_at": at, "approved_at": None})

    def enrol(self) -> dict:
        self.moodle.calls.clear()
        return fail_fast_unless_transient(ess_sync.enrol_ess_requests)(self.settings, hook(), self.engine,
                                                                       self.run_dir, "run-1")

    def states(self) -> dict[int, tuple[str, str | None]]:
        with self.engine.connect() as connection:
            return {e: (state, reason) for e, state, reason in connection.execute(text(
                "SELECT employee_id, state, reason FROM ess_enrolment_request"))}

    def enrol_calls(self) -> list[dict]:
        return [params for name, params in self.moodle.calls if name == "enrol_manual_enrol_users"]


def test_enrolments_go_in_batches_within_max_input_vars_and_none_is_lost(moodle, tmp_path):
    night = Night(moodle, tmp_path, employees=400, batch_size=1000)
    moodle.max_input_vars = 1000  # the site's PHP setting, as moodle_max_input_vars says
    for employee_id in night.active:
        night.request(employee_id, night.open)
    result = night.enrol()
    assert result["enrolled"] == len(night.active) > 300  # more than one call's worth at 3 variables each
    calls = night.enrol_calls()
    assert len(calls) >= 2
    assert all(len(flatten_params(params)) + 3 <= 1000 for params in calls)
    assert set(moodle.enrolments[night.open]) == set(night.users.values())
    fail_fast_unless_transient(ess_sync.record_ess_requests)(night.settings, night.engine, tmp_path, "run-1")
    assert set(night.states().values()) == {("enrolled", "enrolled in Moodle as student")}


def test_a_night_without_requests_reads_none_of_the_population(moodle, tmp_path):
    """No pending request, no assessment to announce: neither the run's employees nor its offers are read (they
    were, every night)."""
    night = Night(moodle, tmp_path)
    (tmp_path / "employees.parquet").unlink()
    (tmp_path / "outcomes" / "ess.offer.json").unlink()
    assert night.enrol() == {"requested": 0, "enrolled": 0, "refused": 0, "awaiting_approval": 0}
    assert read_json(tmp_path / "outcomes" / "ess.enrol.json")["outcomes"] == []
    assert moodle.calls == []
    write_json(tmp_path / "ess_assessments.json", {"new": [], "changed": [], "to_store": [], "students": {}})
    assert ess_sync.notify_ess_assessments(night.settings, night.engine, tmp_path, "run-1")["notifications"] == 0


def test_a_refused_enrolment_is_isolated_and_its_batch_mates_enrolled(moodle, tmp_path):
    night = Night(moodle, tmp_path, batch_size=5)
    first, second, refused, fourth, fifth = night.active[:5]
    for employee_id in (first, second, fourth, fifth):
        night.request(employee_id, night.open)
    night.request(refused, night.closed)
    moodle.enrol(night.users[second], night.open)  # enrolled already (by a teacher)
    result = night.enrol()
    assert (result["enrolled"], result["refused"]) == (4, 1)
    decisions = {d["employee_id"]: (d["state"], d["reason"]) for d in
                 read_json(tmp_path / ess_sync.ENROLMENTS)["decisions"]}
    assert decisions[second] == ("enrolled", "already enrolled in Moodle")
    assert decisions[refused] == ("refused", "the course has no manual enrolment method in Moodle (or it is disabled)")
    assert set(moodle.enrolments[night.open]) == {night.users[e] for e in (first, second, fourth, fifth)}
    # one call refused whole, then its halves until the refused enrolment stood alone
    sizes = [len(params["enrolments"]) for params in night.enrol_calls()]
    assert sizes[0] == 4 and sorted(sizes) == [1, 1, 2, 2, 4]
    outcome = {o["record"]: o for o in read_json(tmp_path / ess_sync.ENROLMENTS)["outcomes"]}[f"EE{refused:05d}"]
    assert (outcome["action"], outcome["owner"], outcome["flow"]) == ("refused", "Moodle administrator", "ess")


def test_a_request_of_a_deleted_account_stays_pending_and_the_new_account_is_enrolled(moodle, tmp_path):
    """Moodle answers userdeleted (lab finding 01): not refused, nobody blamed; the link is dropped, and once the
    users flow has linked a new account the request enrols that one, never the deleted one."""
    night = Night(moodle, tmp_path)
    gone, other = night.active[:2]
    night.request(gone, night.open)
    night.request(other, night.open)
    old = night.users[gone]
    moodle.delete_user(old)
    assert night.enrol() == {"requested": 2, "enrolled": 1, "refused": 0, "awaiting_approval": 0}
    fail_fast_unless_transient(ess_sync.record_ess_requests)(night.settings, night.engine, tmp_path, "run-1")
    assert night.states()[gone] == ("pending", None)
    [warning] = [o for o in read_json(tmp_path / ess_sync.ENROLMENTS)["outcomes"] if o["record"] == f"EE{gone:05d}"]
    assert (warning["action"], warning["owner"]) == ("warning", "Moodle administrator")
    assert f"account deleted in Moodle by an administrator: Moodle user #{old}" in warning["reason"]
    assert gone not in set(select_user_links(night.engine, night.settings.key)["employee_id"].astype(int))

    new = moodle.add_user(username=f"user{gone}@example.com", email=f"user{gone}@example.com", firstname="A",
                          lastname="B", idnumber=f"EE{gone:05d}")["id"]
    upsert_user_links(night.engine, night.settings.key, [(gone, new, f"user{gone}@example.com")])
    assert night.enrol()["enrolled"] == 1
    assert new in moodle.enrolments[night.open] and old not in moodle.enrolments[night.open]


def test_a_refusal_of_the_sites_keeps_every_request_pending_and_names_the_setting(moodle, tmp_path):
    night = Night(moodle, tmp_path, student_role_id=99)  # no such role on the site
    for employee_id in night.active[:3]:
        night.request(employee_id, night.open)
    with pytest.raises(AirflowFailException, match=r"ess.student_role_id.*stay pending \(owner: Moodle administrator"):
        night.enrol()
    assert len(night.enrol_calls()) == 1  # no splitting: no request would pass
    fail_fast_unless_transient(ess_sync.record_ess_requests)(night.settings, night.engine, tmp_path, "run-1")
    assert set(night.states().values()) == {("pending", None)}
    assert moodle.enrolments.get(night.open, {}) == {}


def test_an_enrolment_a_teacher_suspended_is_not_reactivated_by_a_request(moodle, tmp_path):
    night = Night(moodle, tmp_path)
    suspended = night.active[0]
    moodle.enrol(night.users[suspended], night.open, suspended=True)
    night.request(suspended, night.open)
    night.enrol()
    assert night.enrol_calls() == []
    fail_fast_unless_transient(ess_sync.record_ess_requests)(night.settings, night.engine, tmp_path, "run-1")
    assert night.states()[suspended] == ("refused", "your enrolment in this course is suspended or has ended in "
                                         "Moodle: ask the course's teacher or a Moodle administrator to reactivate it")
    assert moodle.enrolments[night.open][night.users[suspended]]["status"] == 1


def test_preflight_names_the_ess_functions_the_service_lacks(monkeypatch):
    granted = ["core_webservice_get_site_info", *functions_of("users"), *functions_of("courses"),
               "mod_quiz_get_quizzes_by_courses", "core_enrol_get_enrolled_users"]
    with MoodleStandIn(MOODLE_TOKEN, functions=granted) as site:
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "http", "host": site.base_url,
                                                              "password": MOODLE_TOKEN}))
        with pytest.raises(AirflowFailException, match="lacks enrol_manual_enrol_users, mod_assign_get_assignments;"):
            fail_fast_unless_transient(preflight)(
                integration(flows=["users", "courses", "ess"], ess={"offers": [{"categories": ["A"]}]}), hook())

