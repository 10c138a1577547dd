"""The shared GX mechanism, with a rule of its own: reasons filled from the row, blanks as missing."""

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


def test_a_rule_on_a_column_the_frame_lacks_is_an_error():
    with pytest.raises(ValueError, match="name"):
        validate_frame(pd.DataFrame({"code": ["A"]}), _rules, "code", "owner X")
