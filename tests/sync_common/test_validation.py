"""The shared GX mechanism, with a rule of its own: reasons filled from the row, blanks as missing."""

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest

from sync_common.validation import rule, validate_frame


def _rules():
    import great_expectations as gx

    return [rule(gx.expectations.ExpectColumnValuesToNotBeNull, "name of {code} is missing", column="name")]


def test_a_problem_names_its_record_and_fills_the_reason_from_the_row():
    frame = pd.DataFrame({"code": ["A", "B", "C"], "name": ["x", "  ", None]})
    result = validate_frame(frame, _rules, "code", "owner X")
    assert [(p.record, p.reasons, p.owner) for p in result.invalid] == [
        ("B", ("name of B is missing",), "owner X"), ("C", ("name of C is missing",), "owner X")]
    assert list(result.valid["code"]) == ["A"]
    assert result.invalid_share == pytest.approx(2 / 3)


@pytest.mark.parametrize("dtype", ["str", object])
def test_blanks_of_any_whitespace_are_missing_in_text_columns_and_in_columns_mixing_text_with_numbers(dtype):
    frame = pd.DataFrame({"code": ["A", "B", "C", "D"], "name": ["x", "\t \n", "", " y "]}).astype({"name": dtype})
    assert [p.record for p in validate_frame(frame, _rules, "code", "owner X").invalid] == ["B", "C"]
    mixed = pd.DataFrame({"code": ["A", "B", "C"], "name": [7, "   ", 2.5]}, dtype=object)
    assert [p.record for p in validate_frame(mixed, _rules, "code", "owner X").invalid] == ["B"]


def test_a_rule_on_a_column_the_frame_lacks_is_an_error():
    with pytest.raises(ValueError, match="name"):
        validate_frame(pd.DataFrame({"code": ["A"]}), _rules, "code", "owner X")


def _traced_peak(frame: pd.DataFrame) -> int:
    tracemalloc.start()
    try:
        validate_frame(frame, _rules, "code", "owner X")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reporting_every_row_of_a_bad_extract_costs_no_more_memory_for_columns_no_reason_reads():
    rows = 2000

    def frame(named: bool, unread_columns: int) -> pd.DataFrame:
        codes = pd.DataFrame({"code": [f"C{i}" for i in range(rows)], "name": ["x" if named else None] * rows})
        return codes.assign(**{f"unread_{n}": [f"v{n}-{i}" for i in range(rows)] for n in range(unread_columns)})

    validate_frame(frame(False, 0).head(3), _rules, "code", "owner X")  # GX's first use is not the subject
    reporting = {width: _traced_peak(frame(False, width)) - _traced_peak(frame(True, width)) for width in (0, 40)}
    assert reporting[40] < 2 * reporting[0]


def test_importing_the_validation_modules_does_not_import_gx():
    """A DAG file imports them on every parse and every task process; GX costs ~120 MiB and 2 s to import."""
    modules = "sync_common.validation, psiber.employee_validation, psiber.moodle_validation, school.validation"
    probe = f"import sys, {modules}; print('great_expectations' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    answer = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": str(root / "plugins")})
    assert answer.stdout.split() == ["False"]
