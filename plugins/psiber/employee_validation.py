"""Rules a PSIber employee record must meet before it can become a Moodle user (GX expectations)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from sync_common.outcomes import OWNER_PSIBER_HR
from sync_common.validation import rule, validate_frame

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

COLUMNS = (
    "employee_id",
    "employee_number",
    "payroll_code",
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
EMAIL_REGEX = r"^[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+$"
NO_PSEUDO_EMAIL = "no e-mail and no ID/passport number, so no pseudo e-mail can be made"
DUPLICATE_NUMBER = "employee number {employee_number} is used by more than one employee"

_EMPLOYEE_OWNER = OWNER_PSIBER_HR

@dataclass(frozen=True)
class InvalidRecord:
    """One employee that cannot be synced, and why; HR has to correct it at the source."""

    employee_id: int
    employee_number: str | None
    reasons: tuple[str, ...]
    owner: str = _EMPLOYEE_OWNER


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


def _employee_rules() -> list[Expectation]:
    """One expectation per rule, two for the employee number (present, unique).

    Reasons name the field, never its value, because they end up in logs and e-mails;
    the employee number is the one value allowed (it is how HR finds the record).
    """
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    x = gx.expectations
    return [
        rule(x.ExpectColumnValuesToNotBeNull, "first name is missing", column="first_name"),
        rule(x.ExpectColumnValuesToNotBeNull, "surname is missing", column="surname"),
        rule(x.ExpectColumnValuesToNotBeNull, "employee number is missing", column="employee_number"),
        # Map expectations skip nulls, so a missing number is only reported above.
        rule(x.ExpectColumnValuesToBeUnique, DUPLICATE_NUMBER, column="employee_number"),
        rule(x.ExpectColumnValuesToMatchRegex, "e-mail address is malformed", column="email", regex=EMAIL_REGEX),
        # The pseudo e-mail is made from the ID or passport number, so where e-mail
        # and passport are both missing the ID number must be present.
        rule(
            x.ExpectColumnValuesToNotBeNull,
            NO_PSEUDO_EMAIL,
            column="id_number",
            row_condition=Column("email").is_null() & Column("passport_number").is_null(),
        ),
    ]


def validate_employees(employees: pd.DataFrame) -> EmployeeValidation:
    """Split an extract into rows that can be synced to Moodle and records HR must fix.

    ``valid`` keeps the original rows (values, columns and index order untouched);
    blanks only count as missing for the checks. Every column is required, not only the
    checked ones, because the transform step reads them all.
    """
    if len(employees) == 0:
        return EmployeeValidation(valid=employees.copy(), invalid=(), checked=0)
    missing = [c for c in COLUMNS if c not in employees.columns]
    if missing:
        raise ValueError(f"employee frame lacks columns: {', '.join(missing)}")

    result = validate_frame(employees, _employee_rules, "employee_number", _EMPLOYEE_OWNER)
    invalid = tuple(
        InvalidRecord(
            employee_id=int(employee_id),
            employee_number=problem.record or None,
            reasons=problem.reasons,
            owner=problem.owner,
        )
        for problem, employee_id in zip(result.invalid, result.rejected["employee_id"], strict=True)
    )
    return EmployeeValidation(valid=result.valid, invalid=invalid, checked=result.checked)
