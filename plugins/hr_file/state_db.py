"""The state database of HR export integrations: PSIber's tables (include/sql/schema.sql), where the links to
Moodle accounts, the refusals and the reports are kept as PSIber's are, so the users flow reads and writes them
unchanged.

An export has no row ids of its own: each employee number (compared as Moodle compares ID numbers: trimmed, in any
letter case) gets an employee id the first time it is seen, under the integration's payroll, and keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, text

from hr_file.config import HrFileIntegration
from psiber.psiber_db import add_link_fingerprint
from sync_common.database import sql, statements
from sync_common.validation import normalised_key

EMPLOYEE_NUMBER_LENGTH = 40  # employee.employee_number
# The write lock (sync_common.write_lock) under which new employee ids are given: the ids of every integration of
# a state database come from one count, so one run at a time gives them (no integration key has a space).
EMPLOYEE_IDS_LOCK = "hr_file employee ids"


def create_schema(engine: Engine) -> None:
    """Create the tables the integration reads and writes, if missing (idempotent)."""
    with engine.begin() as connection:
        for statement in statements("schema") + statements("write_lock_schema"):
            connection.execute(text(statement))
    add_link_fingerprint(engine)


def employee_ids(engine: Engine, integration: HrFileIntegration, numbers: Iterable[str]) -> dict[str, int]:
    """The employee id of each employee number (by its normalised key), giving new numbers the next ids, in one
    transaction. Numbers longer than the table keeps are left out."""
    code = integration.payroll_code
    wanted: dict[str, str] = {}
    for number in numbers:
        key = normalised_key(number)
        if key and len(number.strip()) <= EMPLOYEE_NUMBER_LENGTH:
            wanted.setdefault(key, number.strip())
    with engine.begin() as connection:
        connection.execute(text(sql("hr_file_insert_payroll")), {"payroll_code": code,
                                                                  "payroll_name": integration.name})
        seen = connection.execute(text(sql("hr_file_select_employees")), {"payroll_code": code})
        known: dict[str | None, int] = {normalised_key(row.employee_number): int(row.employee_id) for row in seen}
        new = [key for key in wanted if key not in known]
        if new:
            first = int(connection.execute(text(sql("hr_file_next_employee_id"))).scalar_one())
            connection.execute(text(sql("hr_file_insert_employee")), [
                {"employee_id": first + offset, "employee_number": wanted[key], "payroll_code": code}
                for offset, key in enumerate(new)])
            known.update((key, first + offset) for offset, key in enumerate(new))
    return {key: known[key] for key in wanted}
