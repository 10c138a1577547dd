"""Which linked Moodle accounts a night of the users flow reads: on a quiet night none, after a change the changed
employee's, on a full-read night (every ``users.full_sync_every_days``, or asked) all of them; and which employees
it takes as settled (their row unchanged since their account was synced), which it neither checks row by row nor
plans."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, create_engine, text

from factories import integration
from moodle_provider.hooks.moodle import MoodleHook
from psiber import user_sync
from psiber.demo_company import seed_demo_company
from psiber.psiber_db import create_schema, select_user_links
from psiber.targeted_extract import extract_employees_of_run
from psiber.user_plan import accounts_to_read
from sync_common import validation
from sync_common.run_files import read_frame, read_json

DAY = 86_400


def hook() -> MoodleHook:
    return MoodleHook("moodle", backoff_seconds=0.01)


def night(moodle, settings, engine, run_dir, **extract) -> tuple[list[dict], list[int], dict[str, list]]:
    """The users flow's steps in the DAG's order: the night's outcomes, the account ids it looked up and the
    other values it looked up, by field."""
    run_dir.mkdir()
    moodle.calls.clear()
    user_sync.extract_employees(settings, engine, run_dir)
    user_sync.validate_extracted_employees(settings, run_dir, engine=engine, **extract)
    user_sync.transform_employees(settings, run_dir)
    user_sync.extract_moodle_users(settings, hook(), engine, run_dir, **extract)
    asked = [params for name, params in moodle.calls if name == "core_user_get_users_by_field"]
    user_sync.plan_users(settings, run_dir, allow_mass_suspension=False)
    user_sync.apply_user_changes(settings, hook(), engine, run_dir, None, run_dir.name)
    user_sync.record_user_links(settings, engine, run_dir, run_dir.name)
    outcomes = read_json(run_dir / user_sync.PLAN)["outcomes"] + read_json(run_dir / user_sync.APPLIED)["outcomes"]
    ids = sorted(int(value) for params in asked if params["field"] == "id" for value in params["values"])
    others: dict[str, list] = {}
    for params in asked:
        if params["field"] != "id":
            others.setdefault(params["field"], []).extend(params["values"])
    return outcomes, ids, others


def account_of(engine, settings) -> dict[str, int]:
    return {row.employee_number: int(row.moodle_user_id) for row in select_user_links(engine, settings.key)
            .itertuples()}


@dataclass
class FirstNight:
    """A company of 30 whose first night made its Moodle accounts."""

    engine: Engine
    settings: object
    start: int
    accounts: dict[str, int]


@pytest.fixture
def first_night(moodle, tmp_path) -> FirstNight:
    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    seed_demo_company(engine, employees=30)
    settings = integration(safety={"max_invalid_share": 0.5})
    start = int(time.time())
    night(moodle, settings, engine, tmp_path / "night1", now=start)
    return FirstNight(engine, settings, start, account_of(engine, settings))


def test_a_quiet_night_reads_no_account_a_change_reads_its_own_and_a_full_read_reads_all(moodle, tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    seed_demo_company(engine, employees=30)
    settings = integration(safety={"max_invalid_share": 0.5})
    start = int(time.time())
    first, _, _ = night(moodle, settings, engine, tmp_path / "night1", now=start)
    accounts = account_of(engine, settings)
    assert {o["action"] for o in first} >= {"created"} and len(accounts) > 10

    quiet, ids, others = night(moodle, settings, engine, tmp_path / "night2", now=start + DAY)
    assert ids == [] and not set(others.get("idnumber", [])) & set(accounts)  # only employees without an account
    unlinked = others
    assert read_json(tmp_path / "night2" / user_sync.PLAN)["counts"]["users"]["unchanged"] == len(accounts)
    assert not [o for o in quiet if o["action"] == "unchanged"]  # counted, not listed: settled, never planned

    renamed, leaver = sorted(accounts)[:2]
    with engine.begin() as connection:
        connection.execute(text("UPDATE employee SET surname = 'Renamed' WHERE employee_number = :n"), {"n": renamed})
        connection.execute(text("UPDATE employee SET employment_status = 'Terminated' WHERE employee_number = :n"),
                           {"n": leaver})
    changed, ids, others = night(moodle, settings, engine, tmp_path / "night3", now=start + 2 * DAY)
    assert ids == sorted([accounts[renamed], accounts[leaver]]) and others == unlinked
    assert {(o["record"], o["action"]) for o in changed if o["action"] in ("updated", "suspended", "created")} == \
        {(renamed, "updated"), (leaver, "suspended")}
    assert moodle.users[accounts[renamed]]["lastname"] == "Renamed"

    # An administrator edits an e-mail in Moodle: unseen on a quiet night, corrected on the full read.
    edited = sorted(accounts)[2]
    wanted_email = moodle.users[accounts[edited]]["email"]
    moodle.users[accounts[edited]]["email"] = "edited.by.hand@example.com"
    quiet, ids, _ = night(moodle, settings, engine, tmp_path / "night4", now=start + 3 * DAY)
    assert ids == [] and not [o for o in quiet if o["action"] in ("updated", "suspended", "created")]
    full, ids, _ = night(moodle, settings, engine, tmp_path / "night5", now=start + 7 * DAY)
    assert ids == sorted(accounts.values())
    assert [(o["record"], o["reason"]) for o in full if o["action"] == "updated"] == [(edited, "changed: email")]
    assert moodle.users[accounts[edited]]["email"] == wanted_email

    _, ids, _ = night(moodle, settings, engine, tmp_path / "night6", now=start + 8 * DAY)
    assert ids == []  # the full read was the last seven days' one
    _, ids, _ = night(moodle, settings, engine, tmp_path / "night7", now=start + 8 * DAY, full=True)
    assert ids == sorted(accounts.values())  # asked for (full_users_sync)


def test_a_write_moodle_did_not_confirm_is_read_again_the_next_night(moodle, tmp_path, first_night):
    engine, settings, start, accounts = (first_night.engine, first_night.settings, first_night.start,
                                         first_night.accounts)
    renamed = sorted(accounts)[0]
    with engine.begin() as connection:
        connection.execute(text("UPDATE employee SET surname = 'Renamed' WHERE employee_number = :n"), {"n": renamed})
    run_dir = tmp_path / "night2"
    run_dir.mkdir()
    user_sync.extract_employees(settings, engine, run_dir)
    user_sync.validate_extracted_employees(settings, run_dir)
    user_sync.transform_employees(settings, run_dir)
    user_sync.extract_moodle_users(settings, hook(), engine, run_dir, now=start + DAY)
    user_sync.plan_users(settings, run_dir, allow_mass_suspension=False)
    # The apply's answer is lost: it wrote nothing it could confirm.
    (run_dir / user_sync.APPLIED).write_text('{"created_links": [], "refused": [], "unlinked": [], "written": [], '
                                             '"outcomes": []}')
    user_sync.record_user_links(settings, engine, run_dir, run_dir.name)

    _, ids, _ = night(moodle, settings, engine, tmp_path / "night3", now=start + 2 * DAY)
    assert ids == [accounts[renamed]]
    _, ids, _ = night(moodle, settings, engine, tmp_path / "night4", now=start + 3 * DAY)
    assert ids == []


def test_a_targeted_run_reads_only_its_listed_employees_accounts(moodle, tmp_path, first_night):
    engine, settings, start, accounts = (first_night.engine, first_night.settings, first_night.start,
                                         first_night.accounts)
    listed = sorted(accounts)[3]
    run_dir = tmp_path / "targeted"
    run_dir.mkdir()
    source = user_sync.PSIBER.targeted([listed])
    extract_employees_of_run(settings, engine, run_dir, (listed,))
    user_sync.validate_extracted_employees(settings, run_dir, source)
    user_sync.transform_employees(settings, run_dir, source)
    moodle.calls.clear()
    user_sync.extract_moodle_users(settings, hook(), engine, run_dir, source=source, now=start + DAY)
    assert [params["values"] for name, params in moodle.calls] == [[str(accounts[listed])]]


def test_a_link_table_made_before_fingerprints_gets_the_column_and_its_first_night_reads_every_account(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    with engine.begin() as connection:
        connection.execute(text(
            "CREATE TABLE moodle_user_link (integration_name VARCHAR(80) NOT NULL, employee_id INTEGER NOT NULL, "
            "moodle_user_id INTEGER NOT NULL, moodle_username VARCHAR(254) NOT NULL, linked_at TIMESTAMP NOT NULL, "
            "PRIMARY KEY (integration_name, employee_id))"))
        connection.execute(text("INSERT INTO moodle_user_link VALUES ('demo', 1, 7, 'thabo', '2026-01-01')"))
    create_schema(engine)
    create_schema(engine)  # idempotent
    links = select_user_links(engine, "demo")
    assert list(links["synced_fingerprint"]) == [None]
    assert accounts_to_read([], links, [1], full=False) == ([], [])
    assert accounts_to_read([{"employee_id": 1}], links, [1], full=False) == ([7], [])


def settled(run_dir) -> set[str]:
    """The employee numbers a night took as settled (validated before, unchanged, as their accounts hold them)."""
    numbers = {int(row.employee_id): row.employee_number for row in
               read_frame(run_dir / user_sync.EMPLOYEES).itertuples()}
    return {numbers[int(employee_id)] for employee_id in read_json(run_dir / user_sync.SCOPE)["settled"]}


def copy_employee(engine, number: str, new_id: int, **changes) -> None:
    """A new PSIber employee made from another's row, with ``changes``."""
    with engine.begin() as connection:
        row = dict(connection.execute(text("SELECT * FROM employee WHERE employee_number = :n"), {"n": number})
                   .mappings().one())
        row |= {"employee_id": new_id, "employee_number": f"NEW{new_id}", **changes}
        connection.execute(text(f"INSERT INTO employee ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})"),
                           row)


def test_a_quiet_night_takes_every_synced_employee_as_settled_and_gx_sees_only_the_others(moodle, tmp_path,
                                                                                          first_night, monkeypatch):
    engine, settings, start, accounts = (first_night.engine, first_night.settings, first_night.start,
                                         first_night.accounts)
    handed = []
    run_suite = validation._suite_failures
    monkeypatch.setattr(validation, "_suite_failures",
                        lambda batches, frame, suite: handed.extend(frame.index) or run_suite(batches, frame, suite))
    outcomes, ids, _ = night(moodle, settings, engine, tmp_path / "night2", now=start + DAY)
    run_dir = tmp_path / "night2"
    extracted = read_frame(run_dir / user_sync.EMPLOYEES)
    assert settled(run_dir) == set(accounts) and ids == []
    assert len(handed) == len(extracted) - len(accounts)  # the row-wise rules: the others only
    targets = {target["employee_number"] for target in read_json(run_dir / "target_users.json")}
    assert not targets & set(accounts)
    plan = read_json(run_dir / user_sync.PLAN)
    assert plan["counts"]["users"]["unchanged"] == len(accounts) and plan["links"] == []
    assert not [o for o in outcomes if o["record"] in accounts]


def test_a_changed_row_is_checked_and_planned_again_then_settled_once_synced(moodle, tmp_path, first_night):
    engine, settings, start, accounts = (first_night.engine, first_night.settings, first_night.start,
                                         first_night.accounts)
    renamed, regendered = sorted(accounts)[:2]  # a field sent to Moodle, and one no profile field takes
    with engine.begin() as connection:
        connection.execute(text("UPDATE employee SET surname = 'Renamed' WHERE employee_number = :n"), {"n": renamed})
        connection.execute(text("UPDATE employee SET gender = 'Other' WHERE employee_number = :n"), {"n": regendered})
    outcomes, ids, _ = night(moodle, settings, engine, tmp_path / "night2", now=start + DAY)
    assert settled(tmp_path / "night2") == set(accounts) - {renamed, regendered}
    assert ids == [accounts[renamed]]  # the other one's account holds its target already: not read
    assert {(o["record"], o["action"]) for o in outcomes if o["record"] in (renamed, regendered)} == {
        (renamed, "updated"), (regendered, "unchanged")}
    night(moodle, settings, engine, tmp_path / "night3", now=start + 2 * DAY)
    assert settled(tmp_path / "night3") == set(accounts)


def test_a_settings_change_settles_no_one_that_night(moodle, tmp_path, first_night):
    engine, settings, start, accounts = (first_night.engine, first_night.settings, first_night.start,
                                         first_night.accounts)
    changed = settings.model_copy(update={"users": settings.users.model_copy(
        update={"inactive_statuses": (*settings.users.inactive_statuses, "Sabbatical")})})
    outcomes, ids, _ = night(moodle, changed, engine, tmp_path / "night2", now=start + DAY)
    assert settled(tmp_path / "night2") == set() and ids == []  # checked again; their accounts hold their targets
    assert read_json(tmp_path / "night2" / user_sync.PLAN)["counts"]["users"]["unchanged"] == len(accounts)
    night(moodle, changed, engine, tmp_path / "night3", now=start + 2 * DAY)
    assert settled(tmp_path / "night3") == set(accounts)


def test_a_new_employee_sharing_a_settled_ones_number_or_e_mail_unsettles_both(moodle, tmp_path, first_night):
    engine, settings, start, accounts = (first_night.engine, first_night.settings, first_night.start,
                                         first_night.accounts)
    same_email, same_number = sorted(accounts)[:2]
    address = moodle.users[accounts[same_email]]["email"]
    copy_employee(engine, same_email, 9001, email=address.upper())
    copy_employee(engine, same_number, 9002, employee_number=f" {same_number.lower()} ",
                  email="someone.else@example.com")
    outcomes, _, _ = night(moodle, settings, engine, tmp_path / "night2", now=start + DAY)
    assert settled(tmp_path / "night2") == set(accounts) - {same_number}  # the validation's: no longer valid
    assert read_json(tmp_path / "night2" / user_sync.SETTLED)["settled"] == len(accounts) - 2  # and the transform's
    shared = read_json(tmp_path / "night2" / user_sync.TRANSFORMED)["outcomes"]
    assert {(same_email, "conflict"), ("NEW9001", "conflict")} <= {(o["record"], o["action"]) for o in shared}
    assert not [o for o in outcomes if o["record"] in (same_email, "NEW9001")]
    invalid = read_json(tmp_path / "night2" / user_sync.VALIDATED)["outcomes"]
    assert {o["record"].strip().casefold() for o in invalid
            if "more than one employee" in " ".join([o["reason"]])} == {same_number.casefold()}
    assert moodle.users[accounts[same_email]]["email"] == address  # nothing written to either account


def test_a_link_table_made_before_the_source_rows_gets_their_column_at_the_extract(moodle, tmp_path, first_night):
    engine, settings, start = first_night.engine, first_night.settings, first_night.start
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE moodle_user_link DROP COLUMN source_fingerprint"))
    run_dir = tmp_path / "upgraded"
    run_dir.mkdir()
    extract_employees_of_run(settings, engine, run_dir, ())
    assert "source_fingerprint" in select_user_links(engine, settings.key).columns
    night(moodle, settings, engine, tmp_path / "night2", now=start + DAY)
    assert settled(tmp_path / "night2") == set()  # no source row was kept: every row is checked once
    night(moodle, settings, engine, tmp_path / "night3", now=start + 2 * DAY)
    assert settled(tmp_path / "night3") == set(first_night.accounts)


def test_the_suspension_guard_weighs_the_settled_active_users_too(moodle, tmp_path, first_night):
    """Three of the linked employees leave: measured against every active matched user (the settled ones
    included) that is under a 25% limit; against the three alone it would be all of them."""
    engine, start, accounts = first_night.engine, first_night.start, first_night.accounts
    settings = first_night.settings.model_copy(update={"safety": first_night.settings.safety.model_copy(
        update={"max_suspend_share": 0.25, "min_users_for_suspend_guard": 0})})
    leavers = sorted(accounts)[:3]
    with engine.begin() as connection:
        for number in leavers:
            connection.execute(text("UPDATE employee SET employment_status = 'Terminated' WHERE employee_number = :n"),
                               {"n": number})
    outcomes, _, _ = night(moodle, settings, engine, tmp_path / "night2", now=start + DAY)
    assert len(accounts) > 12 and settled(tmp_path / "night2") == set(accounts) - set(leavers)
    assert sorted(o["record"] for o in outcomes if o["action"] == "suspended") == leavers
