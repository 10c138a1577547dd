"""A targeted run of the demo HR export integration (trigger parameter ``sync_only``), run for real with dag.test()
against the Moodle stand-in: only the listed employee is written, while the export holds changes to others that a
whole night would write (a rename, a row gone)."""

from __future__ import annotations

import pytest
from test_hr_file_end_to_end import account, count, hr_run, outcomes

from moodle_provider.functions import is_write

__all__ = ["hr_run"]


@pytest.mark.parametrize("psiber", ["sqlite"], indirect=True)  # the run's logic is the same on either database
def test_a_targeted_run_writes_the_listed_employee_only_and_suspends_nobody_else(hr_run):
    first = hr_run()
    assert first["state"] == "success" and first["targeted_records"] == []
    rows = hr_run.export.read_text().splitlines()
    renamed = {"HR0001,": ("Mokoena", "Mokoena-Dube"), "HR0003,": ("Patel", "Patel-Khan")}
    for start, (old, new) in renamed.items():
        rows = [row.replace(old, new) if row.startswith(start) else row for row in rows]
    hr_run.export.write_text("\n".join(row for row in rows if not row.startswith("HR0002,")) + "\n")
    calls, employees = len(hr_run.moodle.calls), count(hr_run.engine, "employee")

    targeted = hr_run(sync_only=["hr0001, HR9999"])  # one line, a comma between: two keys
    assert targeted["state"] == "success" and targeted["targeted_records"] == ["hr0001", "HR9999"]
    assert [name for name, _ in hr_run.moodle.calls[calls:] if is_write(name)] == ["core_user_update_users"]
    assert outcomes(targeted, "updated") == {"HR0001": "changed: lastname"}
    assert targeted["counts"]["users"]["extracted"] == 1 and not outcomes(targeted, "suspended")
    assert not outcomes(targeted, "invalid")  # the export's bad rows are not this run's
    assert account(hr_run.moodle, "HR0001")["lastname"] == "Mokoena-Dube"
    assert account(hr_run.moodle, "HR0003")["lastname"] == "Patel" and not account(hr_run.moodle, "HR0002")["suspended"]
    assert count(hr_run.engine, "employee") == employees  # no id given to anyone else
    [unknown] = [o for o in targeted["outcomes"] if o["record"] == "HR9999"]
    assert unknown["action"] == "warning" and unknown["owner"] == "HR system administrator"
    assert "the HR export has no record with this key" in unknown["reason"]

    calls = len(hr_run.moodle.calls)
    again = hr_run(sync_only=["HR0001"])
    assert again["state"] == "success" and outcomes(again, "unchanged") == {"HR0001": ""}
    assert [name for name, _ in hr_run.moodle.calls[calls:] if is_write(name)] == []

    night = hr_run(sync_only=[])  # dag.test() keeps a run's conf as the DAG's params in this process
    assert night["state"] == "success" and night["targeted_records"] == []
    assert outcomes(night, "updated") == {"HR0003": "changed: lastname"}
    assert outcomes(night, "suspended") == {"HR0002": "employee is no longer in the HR export"}


@pytest.mark.parametrize("psiber", ["sqlite"], indirect=True)
def test_a_malformed_key_stops_the_run_before_anything_is_written_naming_it(hr_run):
    failed = hr_run(sync_only=["HR0001", "HR0002'--"])
    assert failed["state"] == "failed" and failed["targeted_records"] == ["HR0001", "HR0002'--"]
    assert not [name for name, _ in hr_run.moodle.calls if is_write(name)]
    [why] = [failure for failure in failed["failures"] if failure["task"] == "extract_employees"]
    assert "sync_only: 'HR0002'--' is not a record key" in why["detail"]
