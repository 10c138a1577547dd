"""The users flow's extract from PSIber, whole or targeted: a run triggered with ``sync_only`` reads the listed
employees only, and says which listed numbers it could not sync (``sync_common.targeted_records``)."""

from __future__ import annotations

import logging

import pandas as pd
from sqlalchemy import Engine

from psiber.config import OWNER_PSIBER_HR, Integration
from psiber.psiber_db import add_link_fingerprint, select_employees
from psiber.user_sync import EMPLOYEES, EXTRACTED, extract_employees
from sync_common.outcomes import Outcome
from sync_common.run_files import RunPath, write_frame
from sync_common.step_outputs import write_outcomes
from sync_common.targeted_records import matching, not_found
from sync_common.validation import normalised_key

log = logging.getLogger(__name__)


def extract_employees_of_run(integration: Integration, engine: Engine, run_dir: RunPath,
                             listed: tuple[str, ...]) -> dict:
    """Every employee of the integration's payrolls (``user_sync.extract_employees``), or, in a targeted run,
    the ``listed`` ones: a listed number PSIber does not have is a warning for PSIber HR, and a listed employee
    on a payroll the integration does not cover is out of scope (its linked account is suspended as every night
    would: the plan takes it for a leaver). The listed are picked from every payroll's employees, the query
    the whole run's extract makes, so that both read the same columns.

    A link table made before the links' fingerprints gets them here, before any step reads the links."""
    add_link_fingerprint(engine)
    if not listed:
        return extract_employees(integration, engine, run_dir)
    everyone = select_employees(engine, None)
    found = everyone[everyone["employee_number"].map(normalised_key).isin(list(matching(listed)))]
    covered = found["known_payroll_code"].isna() | found["payroll_code"].isin(_covered_payrolls(integration, found))
    employees = found[covered].reset_index(drop=True)
    write_frame(run_dir / EMPLOYEES, employees)
    outcomes = [Outcome(row.employee_number, "out_of_scope", f"listed to sync now, but on payroll "
                        f"{row.payroll_code}, which this integration does not cover", OWNER_PSIBER_HR)
                for row in found[~covered].itertuples()]
    outcomes += not_found(listed, found["employee_number"], "PSIber", OWNER_PSIBER_HR, "users")
    write_outcomes(run_dir / EXTRACTED, outcomes, {"users": {"extracted": len(employees)}})
    log.info("Targeted run: extracted %d of the %d listed employees", len(employees), len(listed))
    return {"extracted": len(employees), "listed": len(listed), "not_synced": len(outcomes)}


def _covered_payrolls(integration: Integration, found: pd.DataFrame) -> list[str]:
    """The payroll codes the integration covers, of those ``found``: all of them with ``payrolls: all``."""
    return list(found["payroll_code"] if integration.payrolls == "all" else integration.payrolls)
