"""The flow's steps against the Moodle stand-in and a SQLite PSIber: failures, isolation, retries."""

from __future__ import annotations

import json
import threading

import pytest
from airflow.sdk.exceptions import AirflowFailException
from sqlalchemy import create_engine

from factories import MOODLE_TOKEN, employee, employees, integration
from moodle_provider.form_encoding import flatten_params
from moodle_provider.functions import functions_of
from moodle_provider.hooks.moodle import MoodleHook
from moodle_stand_in import MoodleStandIn
from psiber import user_sync
from psiber.demo_company import seed_demo_company
from psiber.preflight import preflight
from psiber.psiber_db import create_schema, select_refusals, select_user_links, upsert_user_links
from psiber.user_plan import plan_user_changes
from psiber.user_transform import build_target_users
from sync_common.run_files import read_frame, read_json, write_json
from sync_common.task_failures import fail_fast_unless_transient


def psiber(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    create_schema(engine)
    return engine


def apply(settings, tmp_path, password=None, moodle_hook=None, run="run-1"):
    return user_sync.apply_user_changes(settings, moodle_hook or hook(), psiber(tmp_path), tmp_path, password, run)


def hook() -> MoodleHook:
    return MoodleHook("moodle", backoff_seconds=0.01)


def create_entry(number: int) -> dict:
    return {"employee_id": number, "employee_number": f"E{number:03d}", "username": f"user{number}@example.com",
            "email": f"user{number}@example.com", "firstname": "Thabo", "lastname": "Mokoena",
            "idnumber": f"E{number:03d}", "customfields": []}


def test_preflight_names_every_missing_function_and_fails_without_retry(monkeypatch):
    granted = ["core_webservice_get_site_info", "core_user_get_users_by_field"]
    with MoodleStandIn(MOODLE_TOKEN, functions=granted) as site:
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "http", "host": site.base_url,
                                                              "password": MOODLE_TOKEN}))
        with pytest.raises(AirflowFailException,
                       match="lacks core_user_create_users, core_user_get_users, core_user_update_users"):
            fail_fast_unless_transient(preflight)(integration(flows=["users"]), hook())


def test_preflight_refuses_a_disabled_integration(moodle):
    with pytest.raises(AirflowFailException, match="disabled.*owner: PSIber setup"):
        fail_fast_unless_transient(preflight)(integration(enabled=False), hook())
    assert moodle.calls == []


def test_transient_failures_keep_airflows_retries(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9",
                                                          "password": MOODLE_TOKEN}))
    from moodle_provider.exceptions import MoodleUnreachableError

    with pytest.raises(MoodleUnreachableError):
        fail_fast_unless_transient(preflight)(integration(), MoodleHook("moodle", backoff_seconds=0.01))


def test_too_many_invalid_employees_fail_the_run_after_listing_them(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    seed_demo_company(engine, employees=40)
    user_sync.extract_employees(integration(), engine, tmp_path)
    with pytest.raises(AirflowFailException, match=r"3 of 40 employees \(8%\) are invalid, more than the allowed 5%"):
        fail_fast_unless_transient(user_sync.validate_extracted_employees)(
            integration(safety={"max_invalid_share": 0.05}), tmp_path)
    listed = read_json(tmp_path / user_sync.VALIDATED)["outcomes"]
    assert [o["record"] for o in listed] == ["EE00013", "EE00015", "EE00016"]


def test_one_refused_record_does_not_fail_its_batch_mates(moodle, tmp_path):
    creates = [create_entry(n) for n in range(1, 8)]
    write_json(tmp_path / user_sync.PLAN, {"creates": creates, "updates": [], "links": [], "outcomes": []})
    clash = moodle.add_user(username="user4@example.com", email="other@example.com", idnumber="SOMEONE-ELSE")
    result = apply(integration(users={"batch_size": 10}), tmp_path)
    applied = read_json(tmp_path / user_sync.APPLIED)
    assert result["created"] == 6 and result["failed"] == 1
    [conflict] = [o for o in applied["outcomes"] if o["action"] == "conflict"]
    assert conflict["record"] == "E004"
    assert f"already used by Moodle user #{clash['id']}" in conflict["reason"]
    assert [r["employee_id"] for r in applied["refused"]] == [4]
    assert sorted(u["idnumber"] for u in moodle.users.values() if u["idnumber"].startswith("E0")) == \
        ["E001", "E002", "E003", "E005", "E006", "E007"]


def test_a_retried_apply_adopts_what_the_first_attempt_created(moodle, tmp_path):
    creates = [create_entry(n) for n in range(1, 6)]
    write_json(tmp_path / user_sync.PLAN, {"creates": creates, "updates": [], "links": [], "outcomes": []})
    settings = integration(users={"batch_size": 2})
    assert apply(settings, tmp_path)["created"] == 5
    users_after_first = len(moodle.users)
    result = apply(settings, tmp_path)
    assert len(moodle.users) == users_after_first
    assert result == {"created": 0, "adopted": 5, "failed": 0, "moodle_calls": 1}
    assert {o["action"] for o in read_json(tmp_path / user_sync.APPLIED)["outcomes"]} == {"adopted"}
    assert {link[1] for link in read_json(tmp_path / user_sync.APPLIED)["created_links"]} == \
        {u["id"] for u in moodle.users.values() if u["idnumber"].startswith("E0")}


def test_initial_password_policy_forces_a_change_at_first_login(moodle, tmp_path):
    write_json(tmp_path / user_sync.PLAN, {"creates": [create_entry(1)], "updates": [], "links": [],
                                             "outcomes": []})
    settings = integration(users={"new_user_passwords": {"policy": "initial_password", "connection_id": "pw"}})
    apply(settings, tmp_path, "First-Pa55word!")
    [(name, params)] = [call for call in moodle.calls if call[0] == "core_user_create_users"]
    [sent] = params["users"]
    assert sent["password"] == "First-Pa55word!"
    assert sent["preferences"] == [{"type": "auth_forcepasswordchange", "value": "1"}]
    assert "First-Pa55word!" not in (tmp_path / user_sync.PLAN).read_text() + (tmp_path / user_sync.APPLIED).read_text()


def test_moodle_generated_password_policy_asks_moodle_to_make_one(moodle, tmp_path):
    write_json(tmp_path / user_sync.PLAN, {"creates": [create_entry(1)], "updates": [], "links": [],
                                             "outcomes": []})
    apply(integration(), tmp_path)
    [(name, params)] = [call for call in moodle.calls if call[0] == "core_user_create_users"]
    assert params["users"][0]["createpassword"] == "1" and "password" not in params["users"][0]


def test_an_initial_password_the_site_refuses_stops_the_step_at_once_and_names_the_policy(moodle, tmp_path):
    write_json(tmp_path / user_sync.PLAN, {"creates": [create_entry(n) for n in range(1, 9)], "updates": [],
                                             "links": [], "outcomes": []})
    settings = integration(users={"batch_size": 4,
                                  "new_user_passwords": {"policy": "initial_password", "connection_id": "pw"}})
    with pytest.raises(AirflowFailException,
                       match="initial password of new users: Passwords must .*owner: PSIber setup"):
        fail_fast_unless_transient(apply)(settings, tmp_path, "weak")
    assert sum(1 for name, _ in moodle.calls if name == "core_user_create_users") == 1
    outcomes = read_json(tmp_path / user_sync.APPLIED)["outcomes"]
    assert [(o["record"], o["action"]) for o in outcomes] == [(f"E{n:03d}", "failed") for n in range(1, 9)]
    assert all("not sent: the step stopped" in o["reason"] and "weak" not in o["reason"] for o in outcomes)


def test_records_refused_for_their_own_data_never_stop_the_step(moodle, tmp_path):
    creates = [create_entry(n) for n in range(1, 12)]
    for entry in creates[:8]:  # eight refused in a row (Moodle wants a first name), then good records
        entry["firstname"] = ""
    write_json(tmp_path / user_sync.PLAN, {"creates": creates, "updates": [], "links": [], "outcomes": []})
    result = apply(integration(users={"batch_size": 4}), tmp_path)
    applied = read_json(tmp_path / user_sync.APPLIED)
    assert result["created"] == 3 and result["failed"] == 8
    assert sorted(r["employee_id"] for r in applied["refused"]) == list(range(1, 9))
    assert all("check this employee's" in o["reason"] for o in applied["outcomes"] if o["action"] == "failed")


def test_a_moodle_account_whose_email_differs_only_in_letter_case_is_a_named_conflict(moodle, tmp_path):
    holder = moodle.add_user(username="someone", email="User1@Example.com", idnumber="")
    write_json(tmp_path / user_sync.PLAN, {"creates": [create_entry(1)], "updates": [], "links": [],
                                             "outcomes": []})
    apply(integration(), tmp_path)
    [outcome] = read_json(tmp_path / user_sync.APPLIED)["outcomes"]
    assert outcome["action"] == "conflict" and f"Moodle user #{holder['id']}" in outcome["reason"]
    assert "User1@Example.com" not in outcome["reason"]


def test_batches_stay_under_phps_max_input_vars():
    entries = [create_entry(n) | {"customfields": [{"type": f"f{k}", "value": "x"} for k in range(20)]}
               for n in range(1, 200)]
    encode = user_sync._moodle_entry
    batches = list(user_sync.input_var_batches(entries, 500, 1000, encode))
    assert [item for batch in batches for item in batch] == entries
    sizes = [len(flatten_params({"users": [encode(item) for item in batch]})) for batch in batches]
    assert max(sizes) <= 0.9 * 1000 - 3 and len(batches) > 1
    assert [len(b) for b in user_sync.input_var_batches(entries[:10], 4, 5000, encode)] == [4, 4, 2]


def test_links_are_recorded_from_whatever_apply_wrote_and_skipped_when_it_never_ran(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    seed_demo_company(engine, employees=30)
    assert user_sync.record_user_links(integration(), engine, tmp_path, "run-1") == {"links": 0, "written": 0}
    write_json(tmp_path / user_sync.PLAN, {"creates": [], "updates": [], "links": [[1, 70, "a@example.com"]],
                                             "outcomes": []})
    write_json(tmp_path / user_sync.APPLIED, {"created_links": [[2, 71, "b@example.com"]], "outcomes": [],
                                           "refused": [{"employee_id": 3, "fingerprint": "f", "reason": "r",
                                                        "owner": "o"}]})
    assert user_sync.record_user_links(integration(), engine, tmp_path, "run-1") == \
        {"links": 2, "written": 2, "refused": 1}
    assert user_sync.record_user_links(integration(), engine, tmp_path, "run-1") == \
        {"links": 2, "written": 0, "refused": 1}
    assert list(select_refusals(engine, integration().key)["employee_id"]) == [3]


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


def test_a_quiet_night_looks_up_only_the_linked_accounts_and_a_changed_email_is_checked(moodle, tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    seed_demo_company(engine, employees=30)
    settings = integration()
    linked = [moodle.add_user(username=f"thabo{n}@example.com", email=f"thabo{n}@example.com", idnumber=f"E{n:03d}")
              for n in (1, 2)]
    upsert_user_links(engine, settings.key, [(n, user["id"], user["username"]) for n, user in enumerate(linked, 1)])
    holder = moodle.add_user(username="someone", email="new@example.com", idnumber="X9")

    def extract(*rows) -> dict[str, list]:
        targets, _ = build_target_users(employees(*rows), settings)
        write_json(tmp_path / "target_users.json", targets.to_dict("records"))
        moodle.calls.clear()
        user_sync.extract_moodle_users(settings, hook(), engine, tmp_path)
        return {params["field"]: params["values"] for _, params in moodle.calls}

    assert extract(employee(1), employee(2)) == {"id": [str(user["id"]) for user in linked]}
    asked = extract(employee(1, email="new@example.com"), employee(2))
    assert asked.keys() == {"id", "username", "email"} and asked["email"] == ["new@example.com"]
    assert holder["id"] in {user["id"] for user in read_json(tmp_path / "moodle_users.json")}


def test_scattered_refusals_do_not_stop_the_step_and_leavers_are_suspended_first(moodle, tmp_path):
    leaver = moodle.add_user(username="leaver@example.com", email="leaver@example.com", idnumber="E999")
    creates = [create_entry(n) for n in range(1, 41)]
    for n in (8, 16, 24, 32, 40):  # refused with no visible cause (Moodle wants a first name)
        creates[n - 1]["firstname"] = ""
    write_json(tmp_path / user_sync.PLAN, {"creates": creates, "links": [], "outcomes": [], "updates": [
        {"employee_id": 999, "employee_number": "E999", "action": "suspended", "id": leaver["id"],
         "changed": ["suspended"], "suspended": 1}]})
    result = apply(integration(users={"batch_size": 8}), tmp_path)
    assert result["created"] == 35 and result["failed"] == 5
    assert moodle.users[leaver["id"]]["suspended"] in (True, 1)
    assert [name for name, _ in moodle.calls if name.startswith("core_user_") and "get" not in name][0] == \
        "core_user_update_users"


def test_a_create_that_went_through_before_a_timeout_is_adopted_not_failed(moodle, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "http", "host": moodle.base_url,
                                                          "password": MOODLE_TOKEN, "extra": {"timeout": 0.5}}))
    write_json(tmp_path / user_sync.PLAN, {"creates": [create_entry(n) for n in range(1, 4)], "updates": [],
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
    result = apply(integration(), tmp_path, moodle_hook=slow)
    applied = read_json(tmp_path / user_sync.APPLIED)
    assert result["adopted"] == 3 and result["created"] == 0 and result["failed"] == 0
    assert sum(1 for name, _ in moodle.calls if name == "core_user_create_users") == 1  # read back, not sent again
    assert sorted(link[0] for link in applied["created_links"]) == [1, 2, 3]
    assert sum(1 for u in moodle.users.values() if u["idnumber"].startswith("E0")) == 3


def test_field_discovery_of_a_users_only_integration_needs_no_course_function(monkeypatch, tmp_path):
    from psiber.field_discovery import discover_custom_fields
    functions = ["core_webservice_get_site_info", "auth_email_get_signup_settings", *functions_of("users")]
    with MoodleStandIn(MOODLE_TOKEN, functions=functions) as site:
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "http", "host": site.base_url,
                                                              "password": MOODLE_TOKEN}))
        counts = discover_custom_fields(integration(flows=["users"]), hook(), tmp_path)
    assert counts["course_fields"] == 0 and counts["user_fields"] > 0
    assert not any(name.startswith("core_course") for name, _ in site.calls)


def test_two_applies_started_at_once_write_each_account_once_and_report_it_once(moodle, tmp_path):
    import threading

    engine = psiber(tmp_path)
    plan = {"creates": [create_entry(n) for n in range(1, 21)], "updates": [], "links": [], "outcomes": []}
    runs = {name: tmp_path / name for name in ("manual__a", "scheduled__b")}
    for folder in runs.values():
        folder.mkdir()
        write_json(folder / user_sync.PLAN, plan)
    start, results = threading.Barrier(2), {}

    def run(name):
        start.wait()
        results[name] = user_sync.apply_user_changes(integration(users={"batch_size": 4}), hook(), engine,
                                                     runs[name], None, name)

    threads = [threading.Thread(target=run, args=(name,)) for name in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(1 for u in moodle.users.values() if u["idnumber"].startswith("E0")) == 20
    assert sorted((r["created"], r["adopted"]) for r in results.values()) == [(0, 20), (20, 0)]
    creates = sum(1 for name, _ in moodle.calls if name == "core_user_create_users")
    assert creates == 5, "the run that waited for the lock sent no create at all"


def test_an_update_call_refused_whole_but_applied_in_part_is_read_back_before_anyone_is_failed(moodle, tmp_path):
    users = [moodle.add_user(username=f"user{n}@example.com", email=f"user{n}@example.com", idnumber=f"E{n:03d}")
             for n in range(1, 4)]
    updates = [{"employee_id": n, "employee_number": f"E{n:03d}", "action": "updated", "id": user["id"],
                "changed": ["firstname"], "firstname": f"Renamed{n}"} for n, user in enumerate(users, start=1)]
    updates[1] |= {"changed": ["firstname", "password"], "password": "weak"}  # makes Moodle fail the whole call
    write_json(tmp_path / user_sync.PLAN, {"creates": [], "updates": updates, "links": [], "outcomes": []})
    apply(integration(), tmp_path)
    outcomes = {o["record"]: o["action"] for o in read_json(tmp_path / user_sync.APPLIED)["outcomes"]}
    assert outcomes == {"E001": "updated", "E002": "failed", "E003": "updated"}
    assert [moodle.users[u["id"]]["firstname"] for u in (users[0], users[2])] == ["Renamed1", "Renamed3"]
    assert sum(1 for name, _ in moodle.calls if name == "core_user_update_users") == 2  # the call, then E002 alone


def test_a_create_call_cut_by_max_input_vars_sends_the_missing_users_again(moodle, tmp_path):
    moodle.max_input_vars = 1000  # the site's PHP; the integration believes Moodle's minimum, 5000
    creates = [create_entry(n) for n in range(1, 201)]
    write_json(tmp_path / user_sync.PLAN, {"creates": creates, "updates": [], "links": [], "outcomes": []})
    result = apply(integration(users={"batch_size": 200}), tmp_path)
    assert result["created"] == 200
    assert {e["username"] for e in creates} <= {u["username"] for u in moodle.users.values()}
    assert moodle.server_log, "the site did cut a call"


def test_batches_sized_from_the_sites_max_input_vars_are_never_cut(moodle, tmp_path):
    moodle.max_input_vars = 1000
    write_json(tmp_path / user_sync.PLAN, {"creates": [create_entry(n) for n in range(1, 201)], "updates": [],
                                             "links": [], "outcomes": []})
    assert apply(integration(users={"batch_size": 200}, moodle_max_input_vars=1000), tmp_path)["created"] == 200
    assert moodle.server_log == []


def test_the_extract_counts_what_is_out_of_scope_and_warns_of_a_configured_payroll_psiber_lacks(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    seed_demo_company(engine, employees=40)
    everyone = user_sync.extract_employees(integration(), engine, tmp_path)
    assert everyone["out_of_scope"] == 0 and everyone["missing_payrolls"] == 0
    some = user_sync.extract_employees(integration(payrolls=["ABG", "NO-SUCH"]), engine, tmp_path)
    assert some["extracted"] + some["out_of_scope"] == everyone["extracted"]
    assert 0 < some["extracted"] < everyone["extracted"]
    [warning] = read_json(tmp_path / user_sync.EXTRACTED)["outcomes"]
    assert (warning["record"], warning["action"]) == ("payroll NO-SUCH", "warning")


def test_the_moodle_user_look_ups_are_asked_in_parallel(moodle, tmp_path, monkeypatch):
    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    seed_demo_company(engine, employees=30)
    settings = integration()
    targets, _ = build_target_users(employees(employee(1)), settings)
    write_json(tmp_path / "target_users.json", targets.to_dict("records"))
    together = threading.Barrier(3, timeout=20)  # by ID number, username and e-mail: all three at once
    original = MoodleHook.call

    def call(self, wsfunction, **params):
        together.wait()
        return original(self, wsfunction, **params)

    monkeypatch.setattr(MoodleHook, "call", call)
    user_sync.extract_moodle_users(settings, hook(), engine, tmp_path)
    assert read_json(tmp_path / "moodle_users.json") == []


def test_a_database_refusing_every_create_stops_the_step_quarantines_nobody_and_the_next_night_creates_all(
        moodle, tmp_path):
    engine = psiber(tmp_path)
    creates = [create_entry(n) for n in range(1, 39)]
    write_json(tmp_path / user_sync.PLAN, {"creates": creates, "updates": [], "links": [], "outcomes": []})
    moodle.database_refuses_writes = True
    with pytest.raises(AirflowFailException, match=r"dmlwriteexception: Error writing to database.*a problem of the "
                       r"site.*no record was quarantined.*owner: Moodle administrator\)"):
        fail_fast_unless_transient(apply)(integration(users={"batch_size": 50}), tmp_path)
    applied = read_json(tmp_path / user_sync.APPLIED)
    assert applied["refused"] == [] and len(applied["outcomes"]) == 38
    assert all(o["owner"] == "Moodle administrator" and "check this employee" not in o["reason"]
               for o in applied["outcomes"])
    assert sum(1 for name, _ in moodle.calls if name == "core_user_create_users") <= 10
    user_sync.record_user_links(integration(), engine, tmp_path, "run-1")
    assert select_refusals(engine, integration().key).empty

    moodle.database_refuses_writes = False  # the next night, the site fixed
    assert apply(integration(users={"batch_size": 50}), tmp_path, run="run-2")["created"] == 38


def test_a_database_refusing_every_update_stops_the_step_and_quarantines_nobody(moodle, tmp_path):
    users = [moodle.add_user(username=f"user{n}@example.com", email=f"user{n}@example.com", idnumber=f"E{n:03d}")
             for n in range(1, 23)]
    updates = [{"employee_id": n, "employee_number": f"E{n:03d}", "action": "updated", "id": user["id"],
                "changed": ["firstname"], "firstname": f"Renamed{n}"} for n, user in enumerate(users, start=1)]
    write_json(tmp_path / user_sync.PLAN, {"creates": [], "updates": updates, "links": [], "outcomes": []})
    moodle.database_refuses_writes = True
    with pytest.raises(user_sync.SiteRefusesWritesError, match="owner: Moodle administrator"):
        apply(integration(), tmp_path)
    applied = read_json(tmp_path / user_sync.APPLIED)
    assert applied["refused"] == [] and {o["action"] for o in applied["outcomes"]} == {"failed"}
    assert all("in PSIber" not in o["reason"] for o in applied["outcomes"])


def test_a_record_the_database_refuses_among_good_ones_is_still_isolated_and_remembered(moodle, tmp_path):
    creates = [create_entry(n) for n in range(1, 11)]
    for n in (4, 5):  # two in a row too long for mdl_user.department: dmlwriteexception, as a failing site answers
        creates[n - 1]["department"] = "D" * 300
    write_json(tmp_path / user_sync.PLAN, {"creates": creates, "updates": [], "links": [], "outcomes": []})
    result = apply(integration(users={"batch_size": 10}), tmp_path)
    applied = read_json(tmp_path / user_sync.APPLIED)
    assert result["created"] == 8 and result["failed"] == 2
    assert [r["employee_id"] for r in applied["refused"]] == [4, 5]
    assert all("Error writing to database" in r["reason"] for r in applied["refused"])


def users_night(settings, engine, run_dir, full: bool = False) -> list[dict]:
    """The users flow's steps in the DAG's order (``full``: reading every linked account); the night's plan and
    apply outcomes."""
    run_dir.mkdir()
    user_sync.extract_employees(settings, engine, run_dir)
    user_sync.validate_extracted_employees(settings, run_dir)
    user_sync.transform_employees(settings, run_dir)
    user_sync.extract_moodle_users(settings, hook(), engine, run_dir, full=full)
    user_sync.plan_users(settings, run_dir, allow_mass_suspension=False)
    user_sync.apply_user_changes(settings, hook(), engine, run_dir, None, run_dir.name)
    user_sync.record_user_links(settings, engine, run_dir, run_dir.name)
    return read_json(run_dir / user_sync.PLAN)["outcomes"] + read_json(run_dir / user_sync.APPLIED)["outcomes"]


def test_an_account_an_administrator_deleted_is_unlinked_and_made_again_in_the_same_night(moodle, tmp_path):
    """Lab finding 01: Moodle still answers the deleted row by id; the employee gets a new account on the night
    that reads it (a warning naming the deleted one, owner Moodle administrator), nothing failed, and the next
    night is quiet."""
    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    seed_demo_company(engine, employees=30)
    settings = integration(safety={"max_invalid_share": 0.5})
    users_night(settings, engine, tmp_path / "night1")
    links = user_links(engine, settings)
    employee_id, old_id = next(iter(links.items()))
    moodle.delete_user(old_id)

    outcomes = users_night(settings, engine, tmp_path / "night2", full=True)  # a quiet night reads no one
    number = next(o["record"] for o in outcomes if o["action"] == "warning")
    mine = sorted((o["action"], o["owner"]) for o in outcomes if o["record"] == number)
    assert mine == [("created", ""), ("warning", "Moodle administrator")]
    assert f"account deleted in Moodle by an administrator: Moodle user #{old_id}" in str(outcomes)
    assert not [o for o in outcomes if o["action"] in ("failed", "quarantined")]
    new_id = user_links(engine, settings)[employee_id]
    assert new_id != old_id and not moodle.users[new_id].get("deleted")
    assert [name for name, _ in moodle.calls if name == "core_user_update_users"] == []

    moodle.calls.clear()
    outcomes = users_night(settings, engine, tmp_path / "night3")
    assert not [name for name, _ in moodle.calls if name.startswith(("core_user_create", "core_user_update"))]
    assert {o["action"] for o in outcomes} <= {"unchanged", "skipped"}


def test_an_update_moodle_answers_usernotupdateddeleted_makes_a_new_account_and_drops_the_link(moodle, tmp_path):
    """Deleted between the read and the write: recognised from Moodle's warning, never blamed on PSIber."""
    engine = psiber(tmp_path)
    settings = integration()
    targets, _ = build_target_users(employees(employee(1)), settings)
    write_json(tmp_path / "target_users.json", targets.to_dict("records"))
    old = moodle.add_user(username="thabo1@example.com", email="thabo1@example.com", idnumber="E001")
    moodle.delete_user(old["id"])
    write_json(tmp_path / user_sync.PLAN, {"creates": [], "links": [], "unlinks": [], "outcomes": [], "updates": [
        {"employee_id": 1, "employee_number": "E001", "action": "updated", "id": old["id"], "changed": ["firstname"],
         "firstname": "Thabang"}]})
    upsert_user_links(engine, settings.key, [(1, old["id"], "thabo1@example.com")])
    apply(settings, tmp_path)
    applied = read_json(tmp_path / user_sync.APPLIED)
    assert sorted(o["action"] for o in applied["outcomes"]) == ["created", "warning"]
    assert applied["refused"] == [] and applied["unlinked"] == [1]
    user_sync.record_user_links(settings, engine, tmp_path, "run-1")
    [(employee_id, new_id)] = user_links(engine, settings).items()
    assert new_id != old["id"] and moodle.users[new_id]["idnumber"] == "E001"


def user_links(engine, settings) -> dict[int, int]:
    return {int(r.employee_id): int(r.moodle_user_id) for r in select_user_links(engine, settings.key).itertuples()}
