"""The flow's steps against the Moodle stand-in and a SQLite PSIber: failures, isolation, retries."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException
from sqlalchemy import create_engine

from factories import employee, employees, integration
from moodle.hook import MoodleHook
from moodle_stand_in import MoodleStandIn
from psiber import user_sync
from psiber.demo_company import seed_demo_company
from psiber.preflight import preflight
from psiber.user_plan import plan_user_changes
from psiber.user_transform import build_target_users
from sync_common.run_files import read_frame, read_json, write_json
from sync_common.task_failures import fail_fast_unless_transient

TOKEN = "feedfacefeedfacefeedfacefeedface"


@pytest.fixture
def moodle(monkeypatch):
    with MoodleStandIn(TOKEN) as stand_in:
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "http", "host": stand_in.base_url,
                                                              "password": TOKEN}))
        yield stand_in


def hook() -> MoodleHook:
    return MoodleHook("moodle", backoff_seconds=0.01)


def create_entry(number: int) -> dict:
    return {"employee_id": number, "employee_number": f"E{number:03d}", "username": f"user{number}@example.com",
            "email": f"user{number}@example.com", "firstname": "Thabo", "lastname": "Mokoena",
            "idnumber": f"E{number:03d}", "customfields": []}


def test_preflight_names_every_missing_function_and_fails_without_retry(monkeypatch):
    with MoodleStandIn(TOKEN, functions=["core_webservice_get_site_info", "core_user_get_users_by_field"]) as site:
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "http", "host": site.base_url,
                                                              "password": TOKEN}))
        with pytest.raises(AirflowFailException, match="lacks core_user_create_users, core_user_update_users"):
            fail_fast_unless_transient(preflight)(integration(flows=["users"]), hook())


def test_preflight_refuses_a_disabled_integration(moodle):
    with pytest.raises(AirflowFailException, match="disabled.*owner: PSIber setup"):
        fail_fast_unless_transient(preflight)(integration(enabled=False), hook())
    assert moodle.calls == []


def test_transient_failures_keep_airflows_retries(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9",
                                                          "password": TOKEN}))
    from moodle.exceptions import MoodleUnreachableError

    with pytest.raises(MoodleUnreachableError):
        fail_fast_unless_transient(preflight)(integration(), MoodleHook("moodle", backoff_seconds=0.01))


def test_too_many_invalid_employees_fail_the_run_after_listing_them(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    seed_demo_company(engine, employees=40)
    user_sync.extract_employees(integration(), engine, tmp_path)
    with pytest.raises(AirflowFailException, match=r"3 of 40 employees \(8%\) are invalid, more than the allowed 5%"):
        fail_fast_unless_transient(user_sync.validate_extracted_employees)(
            integration(safety={"max_invalid_share": 0.05}), tmp_path)
    listed = read_json(tmp_path / "invalid_employees.json")
    assert [o["record"] for o in listed] == ["EE00013", "EE00015", "EE00016"]


def test_one_refused_record_does_not_fail_its_batch_mates(moodle, tmp_path):
    creates = [create_entry(n) for n in range(1, 8)]
    write_json(tmp_path / "user_plan.json", {"creates": creates, "updates": [], "links": [], "outcomes": []})
    clash = moodle.add_user(username="user4@example.com", email="other@example.com", idnumber="SOMEONE-ELSE")
    result = user_sync.apply_user_changes(integration(users={"batch_size": 10}), hook(), tmp_path, None)
    outcomes = read_json(tmp_path / "applied.json")["outcomes"]
    assert result["created"] == 6 and result["failed"] == 1
    [failed] = [o for o in outcomes if o["action"] == "failed"]
    assert failed["record"] == "E004"
    assert failed["reason"] == ("Moodle refused it (Invalid parameter value detected): "
                                f"its username is already used by Moodle user #{clash['id']}")
    assert sorted(u["idnumber"] for u in moodle.users.values() if u["idnumber"].startswith("E0")) == \
        ["E001", "E002", "E003", "E005", "E006", "E007"]


def test_a_retried_apply_adopts_what_the_first_attempt_created(moodle, tmp_path):
    creates = [create_entry(n) for n in range(1, 6)]
    write_json(tmp_path / "user_plan.json", {"creates": creates, "updates": [], "links": [], "outcomes": []})
    settings = integration(users={"batch_size": 2})
    moodle.fail_next_requests(0)
    user_sync.apply_user_changes(settings, hook(), tmp_path, None)
    users_after_first = len(moodle.users)
    result = user_sync.apply_user_changes(settings, hook(), tmp_path, None)
    assert len(moodle.users) == users_after_first
    assert result == {"created": 5, "failed": 0, "moodle_calls": 1}
    assert {link[1] for link in read_json(tmp_path / "applied.json")["created_links"]} == \
        {u["id"] for u in moodle.users.values() if u["idnumber"].startswith("E0")}


def test_initial_password_policy_forces_a_change_at_first_login(moodle, tmp_path):
    write_json(tmp_path / "user_plan.json", {"creates": [create_entry(1)], "updates": [], "links": [],
                                             "outcomes": []})
    settings = integration(users={"new_user_passwords": {"policy": "initial_password", "connection_id": "pw"}})
    user_sync.apply_user_changes(settings, hook(), tmp_path, "First-Pa55word!")
    [(name, params)] = [call for call in moodle.calls if call[0] == "core_user_create_users"]
    [sent] = params["users"]
    assert sent["password"] == "First-Pa55word!"
    assert sent["preferences"] == [{"type": "auth_forcepasswordchange", "value": "1"}]
    assert "First-Pa55word!" not in (tmp_path / "user_plan.json").read_text() + (tmp_path / "applied.json").read_text()


def test_moodle_generated_password_policy_asks_moodle_to_make_one(moodle, tmp_path):
    write_json(tmp_path / "user_plan.json", {"creates": [create_entry(1)], "updates": [], "links": [],
                                             "outcomes": []})
    user_sync.apply_user_changes(integration(), hook(), tmp_path, None)
    [(name, params)] = [call for call in moodle.calls if call[0] == "core_user_create_users"]
    assert params["users"][0]["createpassword"] == "1" and "password" not in params["users"][0]


def test_a_refusal_with_no_clash_points_at_the_sites_rules(moodle, tmp_path):
    write_json(tmp_path / "user_plan.json", {"creates": [create_entry(1)], "updates": [], "links": [],
                                             "outcomes": []})
    settings = integration(users={"new_user_passwords": {"policy": "initial_password", "connection_id": "pw"}})
    result = user_sync.apply_user_changes(settings, hook(), tmp_path, "weak")
    [failed] = read_json(tmp_path / "applied.json")["outcomes"]
    assert result["failed"] == 1 and failed["action"] == "failed"
    assert "password policy for the initial password" in failed["reason"]
    assert "weak" not in failed["reason"]


def test_refusals_with_no_visible_cause_stop_the_step_and_keep_what_was_done(moodle, tmp_path):
    write_json(tmp_path / "user_plan.json", {"creates": [create_entry(n) for n in range(1, 9)], "updates": [],
                                             "links": [], "outcomes": []})
    settings = integration(users={"batch_size": 4,
                                  "new_user_passwords": {"policy": "initial_password", "connection_id": "pw"}})
    with pytest.raises(AirflowFailException, match="refused 5 records in a row .*password policy"):
        fail_fast_unless_transient(user_sync.apply_user_changes)(settings, hook(), tmp_path, "weak")
    outcomes = read_json(tmp_path / "applied.json")["outcomes"]
    assert [o["record"] for o in outcomes] == ["E001", "E002", "E003", "E004", "E005"]
    assert sum(1 for name, _ in moodle.calls if name == "core_user_create_users") < 16


def test_links_are_recorded_from_whatever_apply_wrote_and_skipped_when_it_never_ran(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    seed_demo_company(engine, employees=30)
    assert user_sync.record_user_links(integration(), engine, tmp_path) == {"links": 0, "written": 0}
    write_json(tmp_path / "user_plan.json", {"creates": [], "updates": [], "links": [[1, 70, "a@example.com"]],
                                             "outcomes": []})
    write_json(tmp_path / "applied.json", {"created_links": [[2, 71, "b@example.com"]], "outcomes": []})
    assert user_sync.record_user_links(integration(), engine, tmp_path) == {"links": 2, "written": 2}
    assert user_sync.record_user_links(integration(), engine, tmp_path) == {"links": 2, "written": 0}


def test_a_moodle_user_whose_email_differs_only_in_case_is_found_and_is_a_conflict(moodle, tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    seed_demo_company(engine, employees=30)
    settings = integration()
    targets, _ = build_target_users(employees(employee(1, email="Thabo.Mokoena@Example.com")), settings)
    write_json(tmp_path / "target_users.json", targets.to_dict("records"))
    holder = moodle.add_user(username="tmokoena", email="Thabo.Mokoena@Example.com", idnumber="")
    user_sync.extract_moodle_users(settings, hook(), engine, tmp_path)
    moodle_users = read_json(tmp_path / "moodle_users.json")
    assert [u["id"] for u in moodle_users] == [holder["id"]]
    result = plan_user_changes(targets, moodle_users, read_frame(tmp_path / "user_links.parquet"), [1])
    assert result.creates == [] and [o.action for o in result.outcomes] == ["conflict"]


def test_scattered_refusals_do_not_stop_the_step_and_leavers_are_suspended_first(moodle, tmp_path):
    leaver = moodle.add_user(username="leaver@example.com", email="leaver@example.com", idnumber="E999")
    creates = [create_entry(n) for n in range(1, 41)]
    for n in (8, 16, 24, 32, 40):  # refused with no visible cause (Moodle wants a first name)
        creates[n - 1]["firstname"] = ""
    write_json(tmp_path / "user_plan.json", {"creates": creates, "links": [], "outcomes": [], "updates": [
        {"employee_id": 999, "employee_number": "E999", "action": "suspended", "id": leaver["id"],
         "changed": ["suspended"], "suspended": 1}]})
    result = user_sync.apply_user_changes(integration(users={"batch_size": 8}), hook(), tmp_path, None)
    assert result["created"] == 35 and result["failed"] == 5
    assert moodle.users[leaver["id"]]["suspended"] in (True, 1)
    assert [name for name, _ in moodle.calls if name.startswith("core_user_") and "get" not in name][0] == \
        "core_user_update_users"


def test_a_create_that_went_through_before_a_timeout_is_adopted_not_failed(moodle, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "http", "host": moodle.base_url,
                                                          "password": TOKEN, "extra": {"timeout": 0.5}}))
    write_json(tmp_path / "user_plan.json", {"creates": [create_entry(n) for n in range(1, 4)], "updates": [],
                                             "links": [], "outcomes": []})
    slow = MoodleHook("moodle", backoff_seconds=0.01)
    call = slow.call

    def create_answered_too_late(wsfunction, **params):
        if wsfunction == "core_user_create_users" and not moodle.users_created_late:
            moodle.users_created_late = True
            moodle.delay_next_requests(1, seconds=1.5)  # Moodle creates them, the answer comes too late
        return call(wsfunction, **params)

    moodle.users_created_late = False
    monkeypatch.setattr(slow, "call", create_answered_too_late)
    result = user_sync.apply_user_changes(integration(), slow, tmp_path, None)
    applied = read_json(tmp_path / "applied.json")
    assert result["created"] == 3 and result["failed"] == 0
    assert sum(1 for name, _ in moodle.calls if name == "core_user_create_users") == 2  # sent, then retried
    assert sorted(link[0] for link in applied["created_links"]) == [1, 2, 3]
    assert sum(1 for u in moodle.users.values() if u["idnumber"].startswith("E0")) == 3


def test_field_discovery_of_a_users_only_integration_needs_no_course_function(monkeypatch, tmp_path):
    from psiber.field_discovery import discover_custom_fields
    from psiber.preflight import REQUIRED_FUNCTIONS

    functions = ["core_webservice_get_site_info", "auth_email_get_signup_settings", *REQUIRED_FUNCTIONS["users"]]
    with MoodleStandIn(TOKEN, functions=functions) as site:
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "http", "host": site.base_url,
                                                              "password": TOKEN}))
        counts = discover_custom_fields(integration(flows=["users"]), hook(), tmp_path)
    assert counts["course_fields"] == 0 and counts["user_fields"] > 0
    assert not any(name.startswith("core_course") for name, _ in site.calls)
