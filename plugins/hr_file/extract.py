"""The HR file kind's one step of its own: the users flow's extract, from the HR system's export. Every later step
is the users flow's (psiber.user_sync), given the export's ``HR_EXPORT`` as the source its messages name."""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from hr_file.config import HrFileIntegration
from hr_file.export_file import OWNER_HR_SYSTEM, employee_frame, read_export
from hr_file.state_db import EMPLOYEE_IDS_LOCK, EMPLOYEE_NUMBER_LENGTH, create_schema, employee_ids
from psiber.user_sync import EMPLOYEES, EXTRACTED
from sync_common.outcomes import Outcome
from sync_common.run_files import RunPath, write_frame
from sync_common.step_outputs import write_outcomes
from sync_common.targeted_records import matching, not_found
from sync_common.validation import normalised_key
from sync_common.write_lock import integration_write_lock

log = logging.getLogger(__name__)


def extract_employees(integration: HrFileIntegration, engine: Engine, run_dir: RunPath, holder: str,
                      listed: tuple[str, ...] = ()) -> dict:
    """Read the export, give each employee number its id in the state database, and leave the employee frame
    where the users flow reads it. A row whose employee number is longer than the state database keeps is
    invalid here; a row without one gets no id (the validation names it by its line). New ids are given under
    the state database's ``EMPLOYEE_IDS_LOCK`` (``holder``: the run). A targeted run (``listed`` employee
    numbers) keeps the listed rows only, and a listed number the export does not hold is a warning for the HR
    system's administrator."""
    frame = employee_frame(read_export(integration.export), integration)
    missing = []
    if listed:
        missing = not_found(listed, frame["employee_number"].dropna().map(str), "the HR export", OWNER_HR_SYSTEM,
                            "users")
        frame = frame[frame["employee_number"].map(normalised_key).isin(list(matching(listed)))].reset_index(drop=True)
    numbers = frame["employee_number"].dropna()
    create_schema(engine)
    with integration_write_lock(engine, EMPLOYEE_IDS_LOCK, holder):
        ids = employee_ids(engine, integration, numbers)
    keys = frame["employee_number"].map(normalised_key)
    too_long = keys.notna() & ~keys.isin(list(ids))
    outcomes = [Outcome(f"{row.employee_number.strip()[:EMPLOYEE_NUMBER_LENGTH]}…, {row.source_location}", "invalid",
                        f"employee number is longer than the {EMPLOYEE_NUMBER_LENGTH} characters the state database "
                        "keeps", OWNER_HR_SYSTEM) for row in frame[too_long].itertuples()]
    frame = frame[~too_long].reset_index(drop=True)
    frame.insert(0, "employee_id", [ids[key] if isinstance(key, str) else -1 - position  # no number: no id
                                    for position, key in enumerate(keys[~too_long])])
    write_frame(run_dir / EMPLOYEES, frame)
    write_outcomes(run_dir / EXTRACTED, outcomes + missing, {"users": {"extracted": len(frame) + len(outcomes)}})
    log.info("Read %d employees from the HR export (%d with an employee number too long)", len(frame) + len(outcomes),
             len(outcomes))
    return {"extracted": len(frame) + len(outcomes), "invalid": len(outcomes)}
