"""A frame's plain records: what ``to_dict("records")`` gives, cell for cell and type for type."""

from __future__ import annotations

import math

import pandas as pd

from sync_common.frames import frame_records
from sync_common.run_files import read_frame, write_frame


def test_records_hold_the_same_values_and_python_types_as_to_dict(tmp_path):
    frame = pd.DataFrame({
        "employee_id": [1, 2, 3],
        "employee_number": ["EE001", None, " EE003 "],
        "suspended": [True, False, True],
        "grade": [72.5, float("nan"), 0.0],
        "customfields": [[{"type": "gender", "value": "Male"}], [], None],
    })
    stored = read_frame(write_frame(tmp_path / "frame.parquet", frame))
    for table in (frame, stored, frame.iloc[[2, 0]], frame.iloc[:0]):
        expected, got = table.to_dict("records"), frame_records(table)
        assert len(got) == len(expected)
        for want, row in zip(expected, got, strict=True):
            assert list(row) == list(want)
            for column, value in want.items():
                if isinstance(value, float) and math.isnan(value):
                    assert math.isnan(row[column])
                else:
                    assert type(row[column]) is type(value), column
                    assert repr(row[column]) == repr(value), column  # lists read back from parquet are arrays


def test_a_frame_read_for_some_columns_holds_those_alone(tmp_path):
    path = write_frame(tmp_path / "employees.parquet",
                       pd.DataFrame({"employee_id": [1], "employee_number": ["EE001"], "email": ["a@example.com"]}))
    assert list(read_frame(path, ["employee_id", "employee_number"]).columns) == ["employee_id", "employee_number"]
    assert list(read_frame(path).columns) == ["employee_id", "employee_number", "email"]
