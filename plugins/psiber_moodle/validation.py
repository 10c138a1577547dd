"""Validate extracted PSIber HR employees with a Great Expectations (GX Core 1.x) suite.

Every rule is a GX expectation and the per-record reasons are read back from GX's
COMPLETE result (``unexpected_index_list``), so the rules live in one declarative
suite instead of being re-implemented in pandas. The whole frame is validated in a
single ``batch.validate(suite)`` run per call.

GX runs fully in memory: an ephemeral context with in-memory stores, no data-docs
site (the default ephemeral context would reserve a temporary directory for one) and
no progress bars (they would spam the Airflow task log). GX 1.24 has no usage
statistics left to send (its ``analytics``/posthog package is gone), but
``analytics_enabled=False`` is still set in the project config, which is where
earlier 1.x releases looked first, so a version change cannot quietly turn it on.

GX is imported inside the functions: it takes about 2 s to import, and the DAG file
imports this module (via user_sync) on every parse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import great_expectations as gx
    from great_expectations.data_context import EphemeralDataContext

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

# One "@", no whitespace, and a domain of non-empty dot-separated labels ("a@b.co").
EMAIL_REGEX = r"^[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+$"

NO_PSEUDO_EMAIL = "no e-mail and no ID/passport number, so no pseudo e-mail can be made"
DUPLICATE_NUMBER = "employee number {employee_number} is used by more than one employee"


def _suite() -> gx.ExpectationSuite:
    """The rules as one suite: one expectation per rule, two for rule 3 (present, unique).

    Each expectation carries its reason in ``meta["reason"]``, so a result maps back to
    its reason without relying on result order. Reasons name the field, never its
    value, because they end up in logs and e-mails; the employee number is the one
    value allowed (it is how HR finds the record) and fills "{employee_number}".
    Built fresh per call: an expectation can belong to only one suite.
    """
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    x = gx.expectations

    def rule(expectation: type[x.Expectation], reason: str, **kwargs) -> x.Expectation:
        return expectation(meta={"reason": reason}, **kwargs)

    return gx.ExpectationSuite(
        name="psiber_hr_employees",
        expectations=[
            rule(x.ExpectColumnValuesToNotBeNull, "first name is missing", column="first_name"),
            rule(x.ExpectColumnValuesToNotBeNull, "surname is missing", column="surname"),
            rule(
                x.ExpectColumnValuesToNotBeNull,
                "employee number is missing",
                column="employee_number",
            ),
            # Map expectations skip nulls, so a missing number is only reported above.
            rule(x.ExpectColumnValuesToBeUnique, DUPLICATE_NUMBER, column="employee_number"),
            rule(
                x.ExpectColumnValuesToMatchRegex,
                "e-mail address is malformed",
                column="email",
                regex=EMAIL_REGEX,
            ),
            # The pseudo e-mail is made from the ID or passport number, so where e-mail
            # and passport are both missing the ID number must be present.
            rule(
                x.ExpectColumnValuesToNotBeNull,
                NO_PSEUDO_EMAIL,
                column="id_number",
                row_condition=Column("email").is_null() & Column("passport_number").is_null(),
            ),
        ],
    )


# COMPLETE is the only format that lists every failing row, not just a sample of 20.
# Without unexpected_index_column_names the pandas engine reports the index labels of the
# failing rows; validating a copy with a 0..n-1 index makes those labels row positions,
# which map back to exactly one row even if HR ever repeats an employee_id.
_RESULT_FORMAT = {"result_format": "COMPLETE"}


@dataclass(frozen=True)
class InvalidRecord:
    """One employee that cannot be synced, and why; HR has to correct it at the source."""

    employee_id: int
    employee_number: str | None
    reasons: tuple[str, ...]
    owner: str = "PSIber HR"


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


def _blank_to_missing(employees: pd.DataFrame) -> pd.DataFrame:
    """Copy with whitespace-only strings turned into nulls and a positional index.

    HR systems export empty fields as "" or spaces; GX's not-null checks only see real
    nulls, so blanks are normalised here rather than duplicated as regexes per rule.
    """
    frame = employees.reset_index(drop=True)
    text = [c for c in COLUMNS if c != "employee_id"]
    frame[text] = frame[text].replace(r"^\s*$", None, regex=True)
    return frame


def _context() -> EphemeralDataContext:
    """A throw-away in-memory GX context that writes no files and draws no progress bars."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _failed_positions(frame: pd.DataFrame) -> dict[int, list[str]]:
    """Run the suite once over the frame; return row position -> reason templates."""
    batch = (
        _context()
        .data_sources.add_pandas("psiber_hr")
        .add_dataframe_asset("employees")
        .add_batch_definition_whole_dataframe("extract")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    results = batch.validate(_suite(), result_format=_RESULT_FORMAT).results

    failed: dict[int, list[str]] = {}
    for result in results:
        if "unexpected_index_list" not in result.result:
            # GX catches errors (e.g. a missing column) into exception_info and returns an
            # empty result; never let that pass as "nobody broke the rule".
            config = result.expectation_config
            raise RuntimeError(f"GX could not evaluate {config.type} on {config.kwargs['column']}")
        for position in result.result["unexpected_index_list"]:
            failed.setdefault(int(position), []).append(result.expectation_config.meta["reason"])
    return failed


def validate_employees(employees: pd.DataFrame) -> EmployeeValidation:
    """Split an extract into rows that can be synced to Moodle and records HR must fix.

    ``valid`` keeps the original rows (values, columns and index order untouched);
    blanks only count as missing for the checks.
    """
    if len(employees) == 0:
        return EmployeeValidation(valid=employees.copy(), invalid=(), checked=0)
    missing = [c for c in COLUMNS if c not in employees.columns]
    if missing:
        raise ValueError(f"employee frame lacks columns: {', '.join(missing)}")

    frame = _blank_to_missing(employees)
    failed = _failed_positions(frame)

    invalid = []
    for position in sorted(failed):
        row = frame.iloc[position]
        number = str(row["employee_number"]) if pd.notna(row["employee_number"]) else None
        invalid.append(
            InvalidRecord(
                employee_id=int(row["employee_id"]),
                employee_number=number,
                reasons=tuple(r.format(employee_number=number) for r in failed[position]),
            )
        )
    keep = [p for p in range(len(frame)) if p not in failed]
    return EmployeeValidation(
        valid=employees.iloc[keep], invalid=tuple(invalid), checked=len(employees)
    )
