"""A frame longer than a chunk: row-wise rules run chunk by chunk, a uniqueness rule sees the rows whose value
repeats, rows checked before skip the row-wise rules, and the verdict is the one a single run would give."""

import pandas as pd
import pytest

from sync_common import validation
from sync_common.validation import rule, validate_frame


def _rules():
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    x = gx.expectations
    return [
        rule(x.ExpectColumnValuesToNotBeNull, "name of {code} is missing", column="name"),
        rule(x.ExpectColumnValuesToBeUnique, "code {code} is used twice", column="code_key"),
        rule(x.ExpectColumnValuesToMatchRegex, "e-mail is malformed", column="email", regex=r"^[^@\s]+@[^@\s]+$"),
        rule(x.ExpectColumnValuesToNotBeNull, "no e-mail and no phone", column="phone",
             row_condition=Column("email").is_null()),
        rule(x.ExpectColumnPairValuesAToBeGreaterThanB, "ends before it starts", column_A="end", column_B="start",
             or_equal=True, ignore_row_if="either_value_is_missing"),
    ]


def _frame() -> pd.DataFrame:
    """Eleven rows, bad ones in every chunk of three, two of them sharing a key across a chunk boundary (rows 2
    and 3), a blank name and a row breaking three rules; an index that is not positional, with a repeated label."""
    rows = [
        ("A", "Ann", "a@x.org", None, 1, 2),
        ("B", "  ", "b@x.org", None, 1, 2),
        ("C", "Cas", "c@x.org", None, 1, 2),
        ("c ", "Cid", None, None, 1, 2),
        ("E", "Eve", "e@x.org", None, 3, 2),
        ("F", "Fay", "f@x.org", "555", 1, 2),
        ("G", None, "not an address", None, 5, 2),
        (None, "Hal", "h at x", None, 1, 2),
        ("I", "Ivy", "i@x.org", None, 1, None),
        ("J", "Jon", "j@x.org", None, 1, 2),
        ("K", "Kim", None, "555", 1, 2),
    ]
    frame = pd.DataFrame(rows, columns=["code", "name", "email", "phone", "start", "end"],
                         index=[10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 10])
    return frame.assign(code_key=frame["code"].map(validation.normalised_key), unread="x")


def _verdict(frame: pd.DataFrame):
    return validate_frame(frame, _rules, "code", "owner X", unnamed="row with name {name}")


def test_a_verdict_in_chunks_of_three_is_the_verdict_of_one_run(monkeypatch):
    whole = _verdict(_frame())
    monkeypatch.setattr(validation, "CHUNK_ROWS", 3)
    chunked = _verdict(_frame())
    assert chunked.invalid == whole.invalid
    assert [p.record for p in whole.invalid] == ["B", "C", "c ", "E", "G", "row with name Hal"]
    assert whole.invalid[4].reasons == ("name of G is missing", "e-mail is malformed", "ends before it starts")
    pd.testing.assert_frame_equal(chunked.valid, whole.valid)
    pd.testing.assert_frame_equal(chunked.rejected, whole.rejected)
    assert chunked.checked == whole.checked == 11


def test_a_duplicate_split_across_two_chunks_is_caught_in_both_rows(monkeypatch):
    monkeypatch.setattr(validation, "CHUNK_ROWS", 3)
    duplicates = [p for p in _verdict(_frame()).invalid if any("used twice" in r for r in p.reasons)]
    assert [(p.record, p.reasons) for p in duplicates] == [("C", ("code C is used twice",)),
                                                           ("c ", ("code c  is used twice", "no e-mail and no phone"))]


def _spied_runs(monkeypatch) -> list[tuple[set[str], list[int], set[str]]]:
    """Each GX run's kinds of rule, row positions and columns, as the validation hands them to GX."""
    runs = []
    run_suite = validation._suite_failures

    def spy(batches, frame, suite):
        runs.append(({e.expectation_type for e in suite.expectations}, list(frame.index), set(frame.columns)))
        return run_suite(batches, frame, suite)

    monkeypatch.setattr(validation, "_suite_failures", spy)
    return runs


@pytest.mark.parametrize("chunk_rows", [3, 4, 11])
def test_gx_sees_no_more_rows_than_a_chunk_for_row_wise_rules_and_the_repeated_keys_for_uniqueness(monkeypatch,
                                                                                                   chunk_rows):
    runs = _spied_runs(monkeypatch)
    monkeypatch.setattr(validation, "CHUNK_ROWS", chunk_rows)
    _verdict(_frame())
    unique = "expect_column_values_to_be_unique"
    assert [(rows, columns) for kinds, rows, columns in runs if unique in kinds] == [([2, 3], {"code_key"})]
    row_wise = [rows for kinds, rows, _ in runs if unique not in kinds]
    assert [position for rows in row_wise for position in rows] == list(range(11))
    assert max(map(len, row_wise)) == chunk_rows
    assert all(columns <= {"name", "email", "phone", "start", "end"} for kinds, _, columns in runs
               if unique not in kinds)


def test_rows_checked_before_skip_the_row_wise_rules_and_still_break_uniqueness(monkeypatch):
    """Rows 0-5 met the rules unchanged before (row 1's blank name and row 4's dates would fail now: their verdict
    stands as given); row 2 shares its key with row 3, which is checked now, so both are reported."""
    runs = _spied_runs(monkeypatch)
    checked = pd.Series([True] * 6 + [False] * 5).to_numpy()
    verdict = validate_frame(_frame(), _rules, "code", "owner X", unnamed="row with name {name}",
                             checked_before=checked)
    assert [p.record for p in verdict.invalid] == ["C", "c ", "G", "row with name Hal"]
    assert sorted(rows for _, rows, _ in runs) == [[2, 3], [6, 7, 8, 9, 10]]
    assert verdict.checked == 11 and len(verdict.valid) == 7


def test_a_frame_checked_before_without_repeated_keys_runs_no_gx_at_all(monkeypatch):
    runs = _spied_runs(monkeypatch)
    frame = _frame().drop(index=13)  # "c ", whose key repeats C's
    verdict = validate_frame(frame, _rules, "code", "owner X", checked_before=[True] * len(frame))
    assert runs == [] and verdict.invalid == () and len(verdict.valid) == len(frame)


def test_gx_runs_store_text_in_python_strings_not_in_pyarrow_whose_pool_keeps_the_memory(monkeypatch):
    """GX's regex and length checks call astype(str); in pyarrow that cost ~20 MiB at 20,000 employees."""
    storages = []
    run_suite = validation._suite_failures

    def spy(batches, frame, suite):
        storages.append(pd.Series(["x"], dtype=object).astype(str).array.dtype.storage)
        return run_suite(batches, frame, suite)

    monkeypatch.setattr(validation, "_suite_failures", spy)
    assert [p.record for p in _verdict(_frame()).invalid][:2] == ["B", "C"]
    assert storages == ["python", "python"]  # the row-wise rules, then uniqueness over the repeated keys
    assert pd.Series(["x"], dtype=object).astype(str).array.dtype.storage == "pyarrow"
