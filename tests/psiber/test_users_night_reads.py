"""Which linked Moodle accounts a night of the users flow reads: on a quiet night none, after a change the changed
employee's, on a full-read night (every ``users.full_sync_every_days``, or asked) all of them."""

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
from sync_common.run_files import read_json

DAY = 86_400


def hook() -> MoodleHook:
    return MoodleHook("moodle", backoff_seconds=0.01)


def night(moodle, settings, engine, run_dir, **extract) -> tuple[list[dict], list[int], dict[str, list]]:
    """The users flow's steps in the DAG's order: the night's outcomes, the account ids it looked up and the
    other values it looked up, by field."""
    run_dir.mkdir()
    moodle.calls.clear()
    user_sync.extract_employees(settings, engine, run_dir)
    user_sync.validate_extracted_employees(settings, run_dir)
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
    assert sum(o["action"] == "unchanged" for o in quiet) == len(accounts)

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
