"""The names a run's report shows beside its records' keys, read from the run's own extract: names only."""

from __future__ import annotations

import pandas as pd

from psiber.record_names import employee_names
from school.record_names import people_names
from sync_common.record_names import name_of, named_keys, names_in_run_file
from sync_common.run_files import write_frame


def test_names_are_read_by_key_from_a_run_file_and_rows_without_a_key_or_name_are_left_out(tmp_path):
    write_frame(tmp_path / "people.parquet", pd.DataFrame({
        "key": ["EE001", " ee002 ", None, "EE004", "EE005"], "first": ["Ann", "Bo", "No", None, " "],
        "last": ["Smith", None, "Key", "Zulu", None], "email": ["a@x.test"] * 5}, dtype=object))
    assert names_in_run_file(tmp_path / "people.parquet", "key", ("first", "last")) == {
        "ee001": "Ann Smith", "ee002": "Bo", "ee004": "Zulu"}
    assert names_in_run_file(tmp_path / "missing.parquet", "key", ("first",)) == {}  # the extract did not run


def test_only_the_names_of_the_records_a_report_lists_are_read(tmp_path):
    write_frame(tmp_path / "people.parquet", pd.DataFrame({
        "key": ["EE001", " ee002 ", "EE003", "EE004"], "first": ["Ann", "Bo", "Cas", "Dee"]}, dtype=object))
    wanted = named_keys(["EE002 / DRV-101", "ee004, export.csv line 3", None, ""])
    assert wanted == {"ee002 / drv-101", "ee002", "ee004, export.csv line 3", "ee004"}
    names = names_in_run_file(tmp_path / "people.parquet", "key", ("first",), wanted)
    assert names == {"ee002": "Bo", "ee004": "Dee"}
    assert [name_of(record, names) for record in ("EE002 / DRV-101", "EE004, export.csv line 3")] == ["Bo", "Dee"]


def test_a_record_named_after_a_person_gets_their_name():
    names = {"ee001": "Ann Smith", "s-1": "Sipho Dube"}
    assert [name_of(record, names) for record in ("EE001", "ee001", "EE001 / DRV-101", "EE001, export.csv line 3",
                                                  "S-1 in SUB-8", "EE0010", "DRV-101", None, "")] == [
        "Ann Smith", "Ann Smith", "Ann Smith", "Ann Smith", "Sipho Dube", "", "", "", ""]
    assert name_of("EE001", {}) == ""


def test_each_kind_reads_the_names_of_its_own_extract(tmp_path):
    write_frame(tmp_path / "employees.parquet", pd.DataFrame({
        "employee_id": [1], "employee_number": ["EE00013"], "first_name": ["Thandi"], "surname": ["Nkosi"],
        "email": ["thandi@x.test"], "id_number": ["8001015009087"]}))
    write_frame(tmp_path / "people.parquet", pd.DataFrame({
        "external_id": ["S-2005"], "first_name": ["Naledi"], "last_name": ["van Wyk"], "email": ["n@x.test"]}))
    assert employee_names(tmp_path) == {"ee00013": "Thandi Nkosi"}  # no e-mail, no ID number
    assert people_names(tmp_path) == {"s-2005": "Naledi van Wyk"}
