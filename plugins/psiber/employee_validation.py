"""Rules a PSIber employee record must meet before it can become a Moodle user (GX expectations)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from psiber.config import OWNER_PSIBER_HR
from psiber.source import PSIBER
from sync_common.employee_source import EmployeeSource
from sync_common.moodle_rules import (
    CONTROL_CHARACTERS,
    EMAIL_REGEX,
    MARKUP,
    MOODLE_IDNUMBER_LENGTH,
    MOODLE_TEXT_LENGTH,
)
from sync_common.validation import normalised_key, normalised_keys, rule, validate_frame

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

COLUMNS = (
    "employee_id",
    "employee_number",
    "payroll_code",
    "known_payroll_code",
    "first_name",
    "surname",
    "email",
    "id_number",
    "passport_number",
    "employment_status",
    "employment_type",
    "gender",
    "disability",
)
NO_PSEUDO_EMAIL = "no e-mail and no ID/passport number, so no pseudo e-mail can be made"
DUPLICATE_NUMBER = ("employee number {employee_number} is used by more than one employee (compared without "
                    "surrounding spaces and letter case)")
_UNKNOWN_STATUS = ("employment status '{{employment_status}}' is neither an active nor an inactive status of the "
                   "integration; correct it in {source}, or list it in users.active_statuses / "
                   "users.inactive_statuses")
UNKNOWN_STATUS = _UNKNOWN_STATUS.format(source="PSIber")
UNKNOWN_PAYROLL = "payroll '{payroll_code}' does not exist in PSIber"
# Fields sent to Moodle, or made into the pseudo e-mail that is sent, with the name a reason gives them.
_SENT_FIELDS = {"employee_number": "employee number", "first_name": "first name", "surname": "surname",
                "email": "e-mail", "id_number": "ID number", "passport_number": "passport number",
                "employment_type": "employment type", "gender": "gender", "disability": "disability"}
_KEYED = ("employee_number", "employment_status", "email", "first_name", "surname")
# Optional column: where a record stands in its source (a file's name and line), added to a rejected record's name.
LOCATION = "source_location"

@dataclass(frozen=True)
class InvalidRecord:
    """One employee that cannot be synced, and why; HR has to correct it at the source."""

    employee_id: int
    record: str
    reasons: tuple[str, ...]
    owner: str = OWNER_PSIBER_HR


@dataclass(frozen=True)
class EmployeeValidation:
    """The outcome of validating one extract: the syncable rows and the rejected ones."""

    valid: pd.DataFrame
    invalid: tuple[InvalidRecord, ...]
    checked: int

    @property
    def invalid_share(self) -> float:
        """Share of checked records that were rejected (0.0 for an empty extract), so the
        caller can stop a sync when a bad extract would otherwise suspend many users."""
        return len(self.invalid) / self.checked if self.checked else 0.0


def _employee_rules(known_statuses: frozenset[str], source: EmployeeSource) -> list[Expectation]:
    """Everything Moodle would refuse, caught before any call, plus what the sync itself needs.

    Reasons name the field, never its value, because they end up in logs and e-mails; the
    employee number, payroll code and employment status are the values allowed (HR finds the
    record by them). Keys are compared normalised (``*_key`` columns: trimmed, case-folded),
    as the transform and Moodle will see them.
    """
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    x = gx.expectations
    rules = [
        rule(x.ExpectColumnValuesToNotBeNull, "first name is missing", column="first_name"),
        rule(x.ExpectColumnValuesToNotBeNull, "surname is missing", column="surname"),
        rule(x.ExpectColumnValuesToNotBeNull, "employee number is missing", column="employee_number"),
        rule(x.ExpectColumnValuesToNotBeNull, "employment status is missing", column="employment_status"),
        # Map expectations skip nulls, so a missing value is only reported once, above.
        rule(x.ExpectColumnValuesToBeUnique, DUPLICATE_NUMBER, column="employee_number_key"),
        rule(x.ExpectColumnValuesToBeInSet, _UNKNOWN_STATUS.format(source=source.name),
             column="employment_status_key",
             value_set=sorted(known_statuses)),
        rule(x.ExpectColumnValuesToNotBeNull, UNKNOWN_PAYROLL, column="known_payroll_code"),
        rule(x.ExpectColumnValuesToMatchRegex, "e-mail address is malformed (Moodle would refuse it)",
             column="email_key", regex=EMAIL_REGEX),
        # The pseudo e-mail is made from the ID or passport number, so where e-mail
        # and passport are both missing the ID number must be present.
        rule(
            x.ExpectColumnValuesToNotBeNull,
            NO_PSEUDO_EMAIL,
            column="id_number",
            row_condition=Column("email").is_null() & Column("passport_number").is_null(),
        ),
        rule(x.ExpectColumnValueLengthsToBeBetween,
             f"employee number is longer than Moodle's {MOODLE_IDNUMBER_LENGTH} characters for an ID number",
             column="employee_number_key", max_value=MOODLE_IDNUMBER_LENGTH),
    ]
    for column in ("first_name", "surname", "email"):
        rules.append(rule(x.ExpectColumnValueLengthsToBeBetween,
                          f"{_SENT_FIELDS[column]} is longer than Moodle's {MOODLE_TEXT_LENGTH} characters",
                          column=f"{column}_key", max_value=MOODLE_TEXT_LENGTH))
    for column in ("first_name", "surname"):
        rules.append(rule(x.ExpectColumnValuesToNotMatchRegex,
                          f"{_SENT_FIELDS[column]} contains markup characters (< or >), which Moodle refuses",
                          column=column, regex=MARKUP))
    for column, name in _SENT_FIELDS.items():
        rules.append(rule(x.ExpectColumnValuesToNotMatchRegex,
                          f"{name} contains control characters (a tab, line break or NUL), which Moodle refuses",
                          column=column, regex=CONTROL_CHARACTERS))
    return rules


def _keys(values: pd.Series, checked_before: np.ndarray | None) -> pd.Series:
    """The normalised keys of a column, left out (None) for the rows checked before: only the row-wise rules, which
    skip those rows, read them (employee numbers, which every row's uniqueness compares, are all made)."""
    if checked_before is None:
        return normalised_keys(values)
    return pd.Series([None if checked else normalised_key(value)
                      for value, checked in zip(values.tolist(), np.asarray(checked_before, dtype=bool), strict=True)],
                     index=values.index, dtype=object)


def validate_employees(employees: pd.DataFrame, known_statuses: Iterable[str],
                       source: EmployeeSource = PSIBER, checked_before: np.ndarray | None = None) -> EmployeeValidation:
    """Split an extract into rows that can be synced to Moodle and records HR must fix.

    ``valid`` keeps the original rows (values, columns and index order untouched);
    blanks only count as missing for the checks. Every column is required, not only the
    checked ones, because the transform step reads them all. ``known_statuses`` are the
    integration's active and inactive employment statuses: any other is a typo to fix,
    never silently "inactive". A record without employee number is named as ``source`` says; its reasons name
    ``source`` as where it is corrected and its owner as who corrects it; with a ``source_location`` column, its
    name says where it stands in the source too. ``checked_before``: the rows that met the rules unchanged before
    (``sync_common.validation.validate_frame``).
    """
    if len(employees) == 0:
        return EmployeeValidation(valid=employees.copy(), invalid=(), checked=0)
    missing = [c for c in COLUMNS if c not in employees.columns]
    if missing:
        raise ValueError(f"employee frame lacks columns: {', '.join(missing)}")

    statuses = frozenset(key for status in known_statuses if (key := normalised_key(status)))
    keys = {f"{column}_key": _keys(employees[column], None if column == "employee_number" else checked_before)
            for column in _KEYED}
    keyed = employees.assign(**keys)
    result = validate_frame(keyed, lambda: _employee_rules(statuses, source), "employee_number", source.owner,
                            unnamed=source.unnamed, checked_before=checked_before)
    invalid = tuple(
        InvalidRecord(
            employee_id=int(employee_id),
            record=f"{problem.record}, {location}" if location else problem.record,
            reasons=problem.reasons,
            owner=problem.owner,
        )
        for problem, employee_id, location in zip(
            result.invalid, result.rejected["employee_id"],
            result.rejected[LOCATION] if LOCATION in employees.columns else [None] * len(result.invalid), strict=True)
    )
    return EmployeeValidation(valid=result.valid.drop(columns=list(keys)), invalid=invalid, checked=result.checked)
