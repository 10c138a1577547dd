"""The HR export read and mapped onto the users flow's employee frame: CSV and Parquet, a local file and object
storage (moto's S3 behind an Airflow Connection); an export that cannot be used as a whole stops the run, naming
the file and the HR system's administrator, before anything is written; employee numbers keep their ids."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from hr_file.config import HrFileIntegration
from hr_file.export_file import HrExportError, employee_frame, read_export
from hr_file.extract import extract_employees
from hr_file.state_db import employee_ids
from object_store import LocalObjectStore
from sqlalchemy import create_engine, inspect

from psiber.employee_validation import COLUMNS
from psiber.user_sync import EMPLOYEES, EXTRACTED
from sync_common.run_files import read_frame, read_json

RUN = "manual__2026-12-01T01:00:00+00:00"
HEADER = "idnumber,firstname,lastname,email,status,profile_field_gender\n"
ROWS = "007,Thandi,Mokoena,thandi@example.com,Active,Female\nHR2,Pieter,Botha,,Active,\n"


def settings(path, **more) -> HrFileIntegration:
    return HrFileIntegration.model_validate({
        "name": "Acme HR", "moodle_conn_id": "moodle", "state_conn_id": "state", "pseudo_email_domain": "acme.com",
        "export": {"path": str(path)}, "users": {"profile_field_matches": [
            {"moodle_field": "gender", "column": "profile_field_gender"}]}, **more})


def test_a_csv_export_is_read_as_written_and_mapped_onto_the_employee_frame_with_each_rows_line(tmp_path):
    path = tmp_path / "hr.csv"
    path.write_text(HEADER + ROWS)
    integration = settings(path)
    frame = employee_frame(read_export(integration.export), integration)
    assert set(COLUMNS) - {"employee_id"} <= set(frame.columns)
    assert list(frame["employee_number"]) == ["007", "HR2"]  # text, not the number 7
    assert list(frame["email"]) == ["thandi@example.com", None]  # an empty cell is missing
    assert list(frame["profile_field_gender"]) == ["Female", None]
    assert list(frame["source_location"]) == ["hr.csv line 2", "hr.csv line 3"]
    assert set(frame["payroll_code"]) == set(frame["known_payroll_code"]) == {"file:acme_hr"}


def test_a_parquet_export_and_one_in_object_storage_are_read_alike(tmp_path, monkeypatch):
    table = pd.read_csv(io.StringIO(HEADER + ROWS), dtype=str, keep_default_na=False)
    table.to_parquet(tmp_path / "hr.parquet")
    local = settings(tmp_path / "hr.parquet")
    expected = employee_frame(read_export(local.export), local)
    assert list(expected["source_location"]) == ["hr.parquet row 1", "hr.parquet row 2"]
    with LocalObjectStore("hr-exports") as store:
        monkeypatch.setenv("AIRFLOW_CONN_AWS_HR", store.connection())
        client = store.client()
        client.put_object(Bucket="hr-exports", Key="acme/hr.parquet", Body=(tmp_path / "hr.parquet").read_bytes())
        client.put_object(Bucket="hr-exports", Key="acme/hr.csv", Body=(HEADER + ROWS).encode())
        stored = settings("s3://aws_hr@hr-exports/acme/hr.parquet")
        pd.testing.assert_frame_equal(employee_frame(read_export(stored.export), stored), expected)
        as_csv = settings("s3://aws_hr@hr-exports/acme/hr.csv")
        assert list(employee_frame(read_export(as_csv.export), as_csv)["employee_number"]) == ["007", "HR2"]
        missing = settings("s3://aws_hr@hr-exports/acme/gone.csv")
        with pytest.raises(HrExportError, match="the file does not exist"):
            read_export(missing.export)


@pytest.mark.parametrize("content, problem", [
    (b"idnumber,firstname,email,status\nHR1,Ann,a@x.com,Active\n",
     "has no column 'lastname', 'profile_field_gender' (named in the integration file's 'columns' and "
     "'users.profile_field_matches'; the export's columns: idnumber, firstname, email, status)"),
    (HEADER.encode(), "the file has no employee rows (an empty export would suspend every account)"),
    (b"", "the file is empty"),
    ((HEADER + "HR1,Zo\xe9,Smith,z@x.com,Active,\n").encode("latin-1"), "cannot be read as csv (UnicodeDecodeError"),
    (None, "the file does not exist (has the HR system's export run?)"),
], ids=["missing column", "header only", "empty", "not utf-8", "missing file"])
def test_an_export_that_cannot_be_used_stops_the_run_naming_file_and_owner_and_nothing_is_written(
        tmp_path, content, problem):
    path = tmp_path / "hr.csv"
    if content is not None:
        path.write_bytes(content)
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(HrExportError) as refused:
        extract_employees(settings(path), engine, run_dir, RUN)
    assert str(refused.value).startswith(f"HR export {path}: {problem}")
    assert str(refused.value).endswith("; nothing was synced (owner: HR system administrator)")
    assert inspect(engine).get_table_names() == [] and list(run_dir.iterdir()) == []


def test_a_csv_a_spreadsheet_program_saved_with_a_byte_order_mark_keeps_its_first_column(tmp_path):
    path = tmp_path / "hr.csv"
    path.write_bytes(("\ufeff" + HEADER + ROWS).encode("utf-8"))
    integration = settings(path)
    assert list(employee_frame(read_export(integration.export), integration)["employee_number"]) == ["007", "HR2"]


def test_an_export_out_of_reach_for_now_is_not_refused_so_the_task_is_retried(tmp_path, monkeypatch):
    (tmp_path / "hr.csv").write_text(HEADER + ROWS)

    def connection_reset(*args, **kwargs):
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(Path, "open", connection_reset)
    with pytest.raises(ConnectionResetError):
        read_export(settings(tmp_path / "hr.csv").export)


def test_a_parquet_file_that_is_not_parquet_is_unreadable(tmp_path):
    (tmp_path / "hr.parquet").write_text(HEADER + ROWS)
    with pytest.raises(HrExportError, match=r"hr.parquet: cannot be read as parquet \(ArrowInvalid: "):
        read_export(settings(tmp_path / "hr.parquet").export)


def test_employee_numbers_keep_their_ids_in_any_letter_case_and_new_ones_get_the_next(tmp_path):
    from hr_file.state_db import create_schema

    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    create_schema(engine)
    integration = settings(tmp_path / "hr.csv")
    first = employee_ids(engine, integration, ["HR1", "HR2"])
    assert first == {"hr1": 1, "hr2": 2}
    assert employee_ids(engine, integration, [" hr2 ", "HR3", "HR1"]) == {"hr2": 2, "hr3": 3, "hr1": 1}
    other = settings(tmp_path / "other.csv", name="Other HR")  # another integration in the same database
    assert employee_ids(engine, other, ["HR1"]) == {"hr1": 4}


def test_the_extract_leaves_the_users_flow_its_frame_and_rejects_numbers_too_long_to_keep(tmp_path):
    path = tmp_path / "hr.csv"
    path.write_text(HEADER + ROWS + f"{'N' * 41},Long,Number,l@example.com,Active,\n,No,Number,n@example.com,Active,\n")
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    assert extract_employees(settings(path), engine, tmp_path, RUN) == {"extracted": 4, "invalid": 1}
    frame = read_frame(tmp_path / EMPLOYEES)
    assert list(frame["employee_id"]) == [1, 2, -3]  # a row without number has no id: validation names it
    [too_long] = read_json(tmp_path / EXTRACTED)["outcomes"]
    assert too_long["record"] == f"{'N' * 40}…, hr.csv line 4" and too_long["owner"] == "HR system administrator"
    assert read_json(tmp_path / EXTRACTED)["counts"] == {"users": {"extracted": 4}}


def test_new_employee_ids_are_given_under_the_state_databases_lock_one_run_at_a_time(tmp_path, monkeypatch):
    """Every integration of a state database takes its ids from one count: two runs at once would give one twice."""
    from contextlib import contextmanager

    import hr_file.extract
    from hr_file.state_db import EMPLOYEE_IDS_LOCK

    held = []

    @contextmanager
    def lock(engine, name, holder):
        held.append((name, holder))
        yield
        held.append("released")

    def ids(*args):
        assert held == [(EMPLOYEE_IDS_LOCK, RUN)]
        return employee_ids(*args)

    monkeypatch.setattr(hr_file.extract, "integration_write_lock", lock)
    monkeypatch.setattr(hr_file.extract, "employee_ids", ids)
    (tmp_path / "hr.csv").write_text(HEADER + ROWS)
    extract_employees(settings(tmp_path / "hr.csv"), create_engine(f"sqlite:///{tmp_path / 'state.db'}"), tmp_path, RUN)
    assert held == [(EMPLOYEE_IDS_LOCK, RUN), "released"]
