"""What each valid employee should look like as a Moodle user (pure: tables in, tables out)."""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from psiber.config import Integration
from psiber.employee_validation import MOODLE_TEXT_LENGTH, PSIBER
from sync_common.employee_source import EmployeeSource
from sync_common.frames import frame_records
from sync_common.outcomes import Outcome

_SPACES = re.compile(r"\s+")
# Moodle's PARAM_USERNAME without "extended username characters": anything else is refused.
_MOODLE_USERNAME = re.compile(r"^[a-z0-9_.@-]+$")


def pseudo_email(id_or_passport: str, employee_number: str, domain: str) -> str:
    """The seed's address for an employee without e-mail: ``<ID or passport><employee number>@<domain>``."""
    return f"{_SPACES.sub('', id_or_passport)}{_SPACES.sub('', employee_number)}@{domain}"


def _address(record: dict, domain: str) -> tuple[str, str]:
    """An employee's address as given (its e-mail, else its pseudo e-mail) and its real e-mail ('' when none)."""
    real_address = _text(record.get("email"))
    return real_address or pseudo_email(_text(record.get("id_number")) or _text(record.get("passport_number")),
                                        _text(record["employee_number"]), domain), real_address


def rows_to_transform(employees: pd.DataFrame, settled: Mapping[int, str], domain: str) -> np.ndarray:
    """Which valid employees get a target this run (a boolean per row): all but the settled ones (employee id →
    their linked username: ``user_plan.settled_employees``), unless another employee's address is now a settled
    one's username, so that both are checked for a shared address."""
    is_settled = employees["employee_id"].astype(int).isin(list(settled)).to_numpy(dtype=bool)
    taken = {_address(record, domain)[0].lower() for record in frame_records(employees[~is_settled])}
    clashing = {employee_id for employee_id, username in settled.items() if username in taken}
    return ~is_settled | employees["employee_id"].astype(int).isin(clashing).to_numpy(dtype=bool)


def is_active(statuses: pd.Series, integration: Integration) -> np.ndarray:
    """Whether each employment status is one of the integration's active statuses (a target's ``suspended``)."""
    active = {status.casefold() for status in integration.users.active_statuses}
    return np.array([_text(status).casefold() in active for status in statuses], dtype=bool)


def _text(value) -> str:
    if isinstance(value, str):  # most values, and never missing: pd.isna is the slow part of a 10,000-row run
        return value.strip()
    return "" if value is None or pd.isna(value) else str(value).strip()


def build_target_users(employees: pd.DataFrame, integration: Integration,
                       source: EmployeeSource = PSIBER) -> tuple[pd.DataFrame, list[Outcome]]:
    """Map validated employees to the Moodle users they should be.

    Returns one row per employee that can have a Moodle account (columns: employee_id,
    employee_number, username, email, email_as_given, firstname, lastname, idnumber,
    suspended, customfields, pseudo_email, source_fingerprint; ``email_as_given`` keeps the source's letter case,
    because Moodle's e-mail look-up is case-sensitive on some databases) and the record-level
    outcomes found on the way: an address Moodle cannot take as a username is invalid (one
    such value would make Moodle refuse a whole look-up), employees sharing an e-mail are
    conflicts (nobody can tell whose it is), menu values outside the field's options are
    warnings and are left out of the user. Outcomes name ``source`` as where a record is corrected and its owner.
    """
    settings = integration.users
    rows: list[dict] = []
    outcomes: list[Outcome] = []
    for record, active in zip(frame_records(employees), is_active(employees["employment_status"], integration),
                              strict=True):
        number = _text(record["employee_number"])
        address, real_address = _address(record, integration.pseudo_email_domain)
        if len(address) > MOODLE_TEXT_LENGTH:
            outcomes.append(Outcome(
                number, "invalid", f"the pseudo e-mail (ID/passport + employee number) would be longer than Moodle's "
                f"{MOODLE_TEXT_LENGTH} characters for a username", source.owner))
            continue
        if not (settings.extended_username_chars or _MOODLE_USERNAME.match(address.lower())):
            outcomes.append(Outcome(
                number, "invalid",
                f"the {'e-mail' if real_address else 'pseudo e-mail (ID/passport + employee number)'} has characters "
                f"Moodle does not allow in usernames (allowed: a-z 0-9 _ - . @); correct it in {source.name}, or "
                "allow extended username characters in Moodle and set users.extended_username_chars",
                source.owner))
            continue
        customfields: dict[str, str] = {}
        warned = False  # a warning is given again each night: the row is not taken as settled
        for match in settings.profile_field_matches:
            value = _text(record.get(match.element))
            if match.menu_options is not None and value and value not in match.menu_options:
                outcomes.append(
                    Outcome(
                        number, "warning",
                        f"{match.element} value is not an option of Moodle menu field "
                        f"'{match.moodle_field}' (options: {', '.join(match.menu_options)}); field left unset",
                        source.owner,
                    )
                )
                warned = True
                continue
            customfields[match.moodle_field] = value
        rows.append(
            {
                "employee_id": int(record["employee_id"]),
                "employee_number": number,
                "username": address.lower(),
                "email": address.lower(),
                "email_as_given": address,
                "firstname": _text(record["first_name"]),
                "lastname": _text(record["surname"]),
                "idnumber": number,
                "suspended": not active,
                "customfields": customfields,
                "pseudo_email": not real_address,
                "source_fingerprint": None if warned else record.get("source_fingerprint"),
            }
        )
    targets = pd.DataFrame(
        rows,
        columns=["employee_id", "employee_number", "username", "email", "email_as_given", "firstname", "lastname",
                 "idnumber", "suspended", "customfields", "pseudo_email", "source_fingerprint"],
    )
    shared = targets["email"].duplicated(keep=False)
    for record in frame_records(targets[shared]):
        others = targets[(targets["email"] == record["email"]) & (targets["employee_id"] != record["employee_id"])]
        outcomes.append(
            Outcome(
                record["employee_number"], "conflict",
                "e-mail address is also used by employee(s) "
                f"{', '.join(others['employee_number'])}; give each employee their own address",
                source.owner,
            )
        )
    return targets[~shared].reset_index(drop=True), outcomes
