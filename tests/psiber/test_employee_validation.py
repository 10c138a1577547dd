"""The GX rules for PSIber employees: one small table per rule, so a failure names the rule."""

import pandas as pd
import pytest

from psiber.employee_validation import (
    COLUMNS,
    DUPLICATE_NUMBER,
    NO_PSEUDO_EMAIL,
    UNKNOWN_STATUS,
    EmployeeValidation,
    InvalidRecord,
    validate_employees,
)


def employee(employee_id: int, **overrides) -> dict:
    """A record that passes every rule; tests override only the fields they break."""
    record = {
        "employee_id": employee_id,
        "employee_number": f"E{employee_id:03d}",
        "payroll_code": "PAY1",
        "known_payroll_code": "PAY1",
        "first_name": "Thandi",
        "surname": "Nkosi",
        "email": f"user{employee_id}@example.co.za",
        "id_number": "8001015009087",
        "passport_number": None,
        "employment_status": "Active",
        "employment_type": "Permanent",
        "gender": "F",
        "disability": None,
    }
    return record | overrides


STATUSES = ("Active", "Terminated")
MALFORMED = "e-mail address is malformed (Moodle would refuse it)"


def table(*records: dict) -> pd.DataFrame:
    return pd.DataFrame(list(records), columns=list(COLUMNS))


def assert_only_invalid(result: EmployeeValidation, frame: pd.DataFrame, *bad: InvalidRecord):
    """The bad records are exactly those given and every other row is passed on untouched."""
    assert result.invalid == bad
    assert result.checked == len(frame)
    bad_ids = {record.employee_id for record in bad}
    pd.testing.assert_frame_equal(result.valid, frame[~frame["employee_id"].isin(bad_ids)])


def test_good_records_are_all_valid():
    frame = table(employee(1), employee(2))
    result = validate_employees(frame, STATUSES)
    assert result.invalid == ()
    pd.testing.assert_frame_equal(result.valid, frame)


@pytest.mark.parametrize(
    ("overrides", "reasons"),
    [
        ({"first_name": None}, ("first name is missing",)),
        ({"surname": None}, ("surname is missing",)),
        ({"employee_number": None}, ("employee number is missing",)),
        ({"email": "user2example.co.za"}, (MALFORMED,)),
        ({"email": "user2@@example.co.za"}, (MALFORMED,)),
        ({"email": "user 2@example.co.za"}, (MALFORMED,)),
        ({"email": "user2@localhost"}, (MALFORMED,)),
        ({"email": "user2@example..za"}, (MALFORMED,)),
        ({"email": None, "id_number": None, "passport_number": None}, (NO_PSEUDO_EMAIL,)),
        ({"email": "user2@example.com."}, (MALFORMED,)),
        ({"email": ".user2@example.com"}, (MALFORMED,)),
        ({"email": "user<2>@example.com"}, (MALFORMED,)),
        ({"email": "usér2@example.com"}, (MALFORMED,)),
        ({"email": "user2@-example.com"}, (MALFORMED,)),
        ({"email": "u" * 65 + "@example.com"}, (MALFORMED,)),
        ({"email": "u" * 40 + "@" + "d" * 60 + ".co.za"}, ("e-mail is longer than Moodle's 100 characters",)),
        ({"first_name": "T" * 101}, ("first name is longer than Moodle's 100 characters",)),
        ({"surname": "<b>Nkosi</b>"}, ("surname contains markup characters (< or >), which Moodle refuses",)),
        ({"first_name": "Tha\x00ndi"},
         ("first name contains control characters (a tab, line break or NUL), which Moodle refuses",)),
        ({"gender": "F\tX"}, ("gender contains control characters (a tab, line break or NUL), which Moodle refuses",)),
        ({"employment_status": "Actve"}, (UNKNOWN_STATUS.format(employment_status="Actve"),)),
        ({"employment_status": None}, ("employment status is missing",)),
        ({"known_payroll_code": None, "payroll_code": "PAYX"}, ("payroll 'PAYX' does not exist in PSIber",)),
    ],
)
def test_each_rule_rejects_the_breaking_record(overrides, reasons):
    frame = table(employee(1), employee(2, **overrides), employee(3))
    number = "PSIber employee row #2 (no employee number)" if "employee_number" in overrides else "E002"
    assert_only_invalid(validate_employees(frame, STATUSES), frame, InvalidRecord(2, number, reasons))


@pytest.mark.parametrize(
    "overrides",
    [
        {"email": None},  # the pseudo e-mail comes from the ID number
        {"email": None, "id_number": None, "passport_number": "A12345678"},
        {"email": "first.last+hr@mail.example.co.za"},
    ],
)
def test_records_that_can_get_an_email_are_valid(overrides):
    frame = table(employee(1, **overrides))
    assert validate_employees(frame, STATUSES).invalid == ()


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_blank_strings_count_as_missing(blank):
    frame = table(
        employee(1, first_name=blank),
        employee(2, surname=blank),
        employee(3, employee_number=blank),
        employee(4, email=blank, id_number=blank, passport_number=blank),
        employee(5, payroll_code=blank),  # no rule on payroll_code: still valid, kept as is
    )
    assert_only_invalid(
        validate_employees(frame, STATUSES),
        frame,
        InvalidRecord(1, "E001", ("first name is missing",)),
        InvalidRecord(2, "E002", ("surname is missing",)),
        InvalidRecord(3, "PSIber employee row #3 (no employee number)", ("employee number is missing",)),
        InvalidRecord(4, "E004", (NO_PSEUDO_EMAIL,)),
    )


def test_a_record_breaking_two_rules_gets_both_reasons():
    frame = table(employee(1, first_name=None, email="not-an-address"), employee(2))
    assert_only_invalid(
        validate_employees(frame, STATUSES),
        frame,
        InvalidRecord(1, "E001", ("first name is missing", MALFORMED)),
    )


def test_duplicate_employee_numbers_flag_every_row_that_shares_it():
    frame = table(employee(1), employee(2, employee_number="E001"), employee(3))
    reason = (DUPLICATE_NUMBER.format(employee_number="E001"),)
    assert_only_invalid(
        validate_employees(frame, STATUSES),
        frame,
        InvalidRecord(1, "E001", reason),
        InvalidRecord(2, "E001", reason),
    )


def test_reasons_carry_no_email_or_id_number():
    email, id_number = "jane doe@example.co.za", "8505055009081"
    frame = table(
        employee(1, email=email, id_number=id_number, surname=None),
        employee(2, email=email, id_number=id_number, employee_number="E001"),
    )
    result = validate_employees(frame, STATUSES)
    assert len(result.invalid) == 2
    text = repr(result.invalid)
    assert email not in text and "jane" not in text and id_number not in text


def test_valid_keeps_the_original_rows_index_and_order():
    frame = table(employee(1), employee(2, surname=None), employee(3, payroll_code=" "))
    frame.index = [30, 10, 20]
    result = validate_employees(frame, STATUSES)
    assert list(result.valid.index) == [30, 20]
    assert result.valid.loc[20, "payroll_code"] == " "


def test_empty_frame_is_valid():
    frame = table()
    result = validate_employees(frame, STATUSES)
    assert (result.checked, result.invalid, result.invalid_share) == (0, (), 0.0)
    assert result.valid.empty and list(result.valid.columns) == list(COLUMNS)


def test_invalid_share_is_rejected_over_checked():
    frame = table(employee(1), employee(2, surname=None), employee(3), employee(4))
    result = validate_employees(frame, STATUSES)
    assert result.checked == 4
    assert result.invalid_share == pytest.approx(0.25)


def test_a_missing_column_is_an_error_not_a_pass():
    with pytest.raises(ValueError, match="id_number"):
        validate_employees(table(employee(1)).drop(columns="id_number"), STATUSES)



def test_statuses_and_employee_numbers_are_compared_as_moodle_will_see_them():
    frame = table(employee(1, employee_number=" E007", employment_status=" active "),
                  employee(2, employee_number="e007 ", employment_status="TERMINATED"), employee(3))
    result = validate_employees(frame, STATUSES)
    assert [(r.record, r.reasons) for r in result.invalid] == [
        (" E007", (DUPLICATE_NUMBER.format(employee_number=" E007"),)),
        ("e007 ", (DUPLICATE_NUMBER.format(employee_number="e007 "),))]
    assert list(result.valid.columns) == list(frame.columns)


def test_an_extract_longer_than_a_chunk_gets_the_verdict_of_one_run(monkeypatch):
    from sync_common import validation

    frame = table(employee(1), employee(2, surname=None), employee(3, employee_number=" e005"), employee(4),
                  employee(5), employee(6, email="not-an-address", employment_status="Retired"), employee(7))
    whole = validate_employees(frame, STATUSES)
    monkeypatch.setattr(validation, "CHUNK_ROWS", 2)
    chunked = validate_employees(frame, STATUSES)
    assert chunked.invalid == whole.invalid
    assert [r.employee_id for r in whole.invalid] == [2, 3, 5, 6]
    pd.testing.assert_frame_equal(chunked.valid, whole.valid)
