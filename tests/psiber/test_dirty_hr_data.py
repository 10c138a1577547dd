"""Dirty HR data over several nights: malformed employees of many kinds mixed into a good extract,
new hires between nights, against a Moodle stand-in that refuses what Moodle refuses.

Each night runs the users flow's steps in the DAG's order, on SQLite and on PostgreSQL. After every
night: each extracted employee has exactly one outcome (warnings aside), problems carry a reason and
an owner, every good employee has their Moodle account, no two Moodle users share an ID number or an
e-mail, and nothing was sent to Moodle for a bad record.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter

import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import MetaData, text

from factories import integration
from moodle_provider.hooks.moodle import MoodleHook
from moodle_stand_in import MoodleStandIn
from psiber import user_sync
from psiber.psiber_db import create_schema, sql
from sync_common.run_files import read_json

# Defects, each with what HR typed. "clash" passes our checks, but a hand-made Moodle account holds the
# e-mail in other letters: Moodle refuses the create, night after night, until someone acts.
DEFECTS = {
    "markup_name": {"first_name": "<b>Thandi</b>"},
    "nul_in_name": {"surname": "Nko\x00si"},
    "tab_in_type": {"employment_type": "Perma\tnent"},
    "long_first_name": {"first_name": "T" * 101},
    "long_email": {"email": "u" * 40 + "@" + "d" * 60 + ".co.za"},
    "email_localhost": {"email": "thandi@localhost"},
    "email_double_dot": {"email": "thandi@example..com"},
    "email_trailing_dot": {"email": "thandi@example.com."},
    "email_accent": {"email": "thandé@example.com"},
    "email_plus": {"email": "thandi+hr@example.com"},
    "status_typo": {"employment_status": "Actve"},
    "blank_number": {"employee_number": "   "},
    "blank_surname": {"surname": " "},
    "no_contact": {"email": None, "id_number": None, "passport_number": None},
    "unknown_payroll": {"payroll_code": "NOPAY"},
    "clash": {},
}
POSTGRES_CANNOT_HOLD = {"unknown_payroll", "nul_in_name"}
PROBLEMS = {"invalid", "conflict", "failed", "quarantined", "skipped"}
TOKEN = secrets.token_hex(16)


def good(employee_id: int) -> dict:
    return {"employee_id": employee_id, "employee_number": f"E{employee_id:04d}", "payroll_code": "ABG",
            "first_name": "Thandi", "surname": f"Nkosi{employee_id}", "email": f"t.nkosi{employee_id}@example.com",
            "id_number": f"80010150{employee_id:05d}", "passport_number": None, "employment_status": "Active",
            "employment_type": "Permanent", "gender": "Female", "disability": "No", "engaged_on": None,
            "terminated_on": None}


def reset(engine) -> None:
    """An empty PSIber with one payroll: every example starts from nothing."""
    create_schema(engine)
    tables = MetaData()
    tables.reflect(engine)
    with engine.begin() as connection:
        for table in reversed(tables.sorted_tables):
            connection.execute(table.delete())
        connection.execute(text(sql("insert_payroll")),
                           {"payroll_code": "ABG", "payroll_name": "ABG", "uif_ref": "U", "sdl_ref": "S"})


def hire(engine, rows: list[dict]) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql("insert_employee")), rows)


def run_night(settings, engine, run_dir) -> list[dict]:
    """The users flow's steps in the DAG's order; returns the night's outcomes."""
    hook = MoodleHook("moodle", backoff_seconds=0.01)
    user_sync.extract_employees(settings, engine, run_dir)
    user_sync.validate_extracted_employees(settings, run_dir)
    user_sync.transform_employees(settings, run_dir)
    user_sync.extract_moodle_users(settings, hook, engine, run_dir)
    user_sync.plan_users(settings, run_dir, allow_mass_suspension=False)
    user_sync.apply_user_changes(settings, hook, engine, run_dir, None, run_dir.name)
    user_sync.record_user_links(settings, engine, run_dir, run_dir.name)
    steps = (user_sync.VALIDATED, user_sync.TRANSFORMED, user_sync.PLAN, user_sync.APPLIED)
    return [o for name in steps for o in read_json(run_dir / name)["outcomes"]]


nights = st.lists(  # per night: the defects of that night's new hires, and how many good new hires
    st.tuples(st.lists(st.sampled_from(sorted(DEFECTS)), max_size=8), st.integers(min_value=1, max_value=6)),
    min_size=2, max_size=3)


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(plan=[(sorted(DEFECTS), 3), (sorted(DEFECTS), 2), ([], 1)])  # every kind, twice, then a quiet night
@given(plan=nights)
def test_dirty_hr_data_never_stalls_the_sync(plan, psiber, tmp_path_factory, monkeypatch):
    engine, _ = psiber
    if engine.dialect.name == "postgresql":  # a foreign key keeps unknown payrolls out, and text holds no NUL
        plan = [([d for d in defects if d not in POSTGRES_CANNOT_HOLD], hires) for defects, hires in plan]
    reset(engine)
    settings_ = integration(flows=["users"], safety={"max_invalid_share": 1.0}, users={"batch_size": 4})
    run_root = tmp_path_factory.mktemp("runs")
    with MoodleStandIn(TOKEN) as moodle:
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "http", "host": moodle.base_url,
                                                              "password": TOKEN}))
        good_ids, bad_ids, clash_ids, next_id = [], [], [], 1
        for night, (defects, hires) in enumerate(plan):
            rows = []
            for defect in defects:
                row = good(next_id) | DEFECTS[defect]
                if defect == "clash":
                    moodle.add_user(username=f"hand.made{next_id}", email=row["email"].upper(), idnumber="")
                    clash_ids.append(next_id)
                else:  # including "email_plus": valid mail, but '+' is not allowed in a Moodle username
                    bad_ids.append(next_id)
                rows.append(row)
                next_id += 1
            for _ in range(hires):
                rows.append(good(next_id))
                good_ids.append(next_id)
                next_id += 1
            hire(engine, rows)
            writes_before = len(moodle.calls)
            (run_root / f"night{night}").mkdir()
            outcomes = run_night(settings_, engine, run_root / f"night{night}")

            extracted = pd.read_parquet(run_root / f"night{night}" / "employees.parquet")
            decisive = Counter(o["record"] for o in outcomes if o["action"] != "warning")
            assert sum(decisive.values()) == len(extracted), "each extracted employee has exactly one outcome"
            assert all(o["reason"] and o["owner"] for o in outcomes if o["action"] in PROBLEMS)

            by_idnumber = Counter(str(u.get("idnumber") or "").strip().casefold() for u in moodle.users.values()
                                  if u.get("idnumber"))
            by_email = Counter(str(u["email"]).casefold() for u in moodle.users.values() if u.get("email"))
            assert max(by_idnumber.values(), default=1) == 1 and max(by_email.values(), default=1) == 1
            have = {u.get("idnumber") for u in moodle.users.values()}
            assert {f"E{i:04d}" for i in good_ids} <= have, "every good employee has a Moodle account"
            assert not {f"E{i:04d}" for i in bad_ids + clash_ids} & have
            sent = json.dumps([params for name, params in moodle.calls[writes_before:]
                               if name in ("core_user_create_users", "core_user_update_users")])
            assert not any(f'"E{i:04d}"' in sent for i in bad_ids), "nothing is sent for an invalid record"
            clashes = {o["record"]: o["action"] for o in outcomes if o["record"] in {f"E{i:04d}" for i in clash_ids}}
            assert set(clashes.values()) <= {"conflict", "quarantined"}

