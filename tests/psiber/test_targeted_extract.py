"""A targeted run's PSIber extract: the listed employees of the integration's payrolls only, an employee on another
payroll out of scope, a number PSIber lacks a warning for PSIber HR."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from factories import integration
from psiber.demo_company import seed_demo_company
from psiber.targeted_extract import extract_employees_of_run
from psiber.user_sync import EMPLOYEES, EXTRACTED
from sync_common.run_files import read_frame, read_json


@pytest.mark.parametrize("psiber", ["sqlite"], indirect=True)
def test_the_listed_employees_of_the_integrations_payrolls_are_extracted_and_the_others_reported(psiber, tmp_path):
    engine, _ = psiber
    seed_demo_company(engine, employees=40)
    with engine.connect() as connection:
        inside, outside = (connection.execute(text(
            f"SELECT MIN(employee_number) FROM employee WHERE payroll_code {test} 'ABG'")).scalar_one()  # noqa: S608
            for test in ("=", "<>"))
    settings = integration(payrolls=["ABG"])

    counts = extract_employees_of_run(settings, engine, tmp_path, (inside.lower(), outside, "EE99999"))
    assert list(read_frame(tmp_path / EMPLOYEES)["employee_number"]) == [inside]
    reported = {o["record"]: (o["action"], o["owner"]) for o in read_json(tmp_path / EXTRACTED)["outcomes"]}
    assert reported == {outside: ("out_of_scope", "PSIber HR"), "EE99999": ("warning", "PSIber HR")}
    assert read_json(tmp_path / EXTRACTED)["counts"] == {"users": {"extracted": 1}}
    assert counts == {"extracted": 1, "listed": 3, "not_synced": 2}

    extract_employees_of_run(integration(payrolls="all"), engine, tmp_path, (inside, outside))
    assert sorted(read_frame(tmp_path / EMPLOYEES)["employee_number"]) == sorted([inside, outside])
