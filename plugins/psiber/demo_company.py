"""A realistic demo company in the PSIber schema, for the demo sync and the end-to-end tests.

Deterministic (seeded), with the awkward records real payrolls have: employees without
e-mail (pseudo e-mails), terminated employees, two sharing an e-mail, a malformed e-mail,
one with neither e-mail nor ID, and employment types outside Moodle's menu.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, text

from psiber.psiber_db import create_schema, sql

PAYROLLS = (
    ("ABG", "ABG Consulting"), ("ADM", "ADM Consulting"), ("AGBAPP", "AGB Applicants"),
    ("AGB", "AGB Consulting"), ("AMD", "AMD Consulting"), ("ASB1", "ASB 1 Consulting"),
    ("ASB2", "ASB 2 Consulting"), ("ASB3", "ASB 3 Consulting (Staff)"), ("ASB4", "ASB 4 Consulting"),
    ("BW", "Botswana"),
)
# An account made by hand in Moodle before the integration, holding employee 20's e-mail.
HAND_MADE_MOODLE_USER = {"username": "lnaidoo", "email": "lerato.naidoo@abg-demo.co.za", "firstname": "Lerato",
                         "lastname": "Naidoo", "idnumber": ""}
PICKLISTS = {
    "result": ("Competent", "Not Yet Competent", "Absent"),
    "course_category": ("Driver Training", "Health and Safety"),
    "course_level": ("Beginner", "Intermediate", "Advanced"),
    "nqf_level": tuple(f"NQF {level}" for level in range(1, 11)),
}
FIRST_NAMES = ("Thabo", "Lerato", "Sipho", "Naledi", "Johan", "Anika", "Pieter", "Zanele", "Mandla", "Ayesha",
               "Kagiso", "Nomvula", "Ruan", "Precious", "Bongani", "Fatima", "Themba", "Refilwe", "Gert", "Palesa")
SURNAMES = ("Mokoena", "Naidoo", "van der Merwe", "Dlamini", "Botha", "Khumalo", "Pillay", "Nkosi", "Smit",
            "Mahlangu", "Jacobs", "Molefe", "Pretorius", "Sithole", "Ndlovu", "Adams", "Mthembu", "Fourie")
EMPLOYMENT_TYPES = ("Permanent", "Contract", "Temporary")


def _employees(count: int, rng: random.Random) -> list[dict]:
    rows = []
    for index in range(1, count + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
        number = f"EE{index:05d}"
        payroll = PAYROLLS[index % len(PAYROLLS)][0]
        has_id = rng.random() < 0.85
        rows.append({
            "employee_id": index,
            "employee_number": number,
            "payroll_code": payroll,
            "first_name": first,
            "surname": last,
            "email": f"{first}.{last.replace(' ', '')}{index}@abg-demo.co.za" if rng.random() < 0.8 else None,
            "id_number": f"{rng.randint(600101, 991231)}{rng.randint(1000, 9999)}08{rng.randint(1, 9)}"
            if has_id else None,
            "passport_number": None if has_id else f"A{rng.randint(100000, 999999)}",
            "employment_status": "Terminated" if rng.random() < 0.08 else "Active",
            "employment_type": rng.choice(EMPLOYMENT_TYPES),
            "gender": rng.choice(("Male", "Female")),
            "disability": rng.choice(("No", "No", "No", "Yes")),
            "engaged_on": date(2015, 1, 1) + timedelta(days=rng.randint(0, 3650)),
            "terminated_on": None,
        })
    # The awkward records every real payroll has, all on payrolls the demo integration covers.
    by_id = {row["employee_id"]: row for row in rows}
    by_id[11]["email"] = by_id[14]["email"] = "shared.inbox@abg-demo.co.za"
    by_id[13]["email"] = "thabo.mokoena(at)abg-demo.co.za"
    by_id[15].update(email=None, id_number=None, passport_number=None)
    by_id[16]["surname"] = None
    by_id[17].update(email=None, id_number=None, passport_number="A011455", employee_number="cc220")
    by_id[18]["employment_type"] = "Learnership"
    by_id[20].update(email="lerato.naidoo@abg-demo.co.za", employment_status="Active")
    return rows


def seed_demo_company(engine: Engine, employees: int = 300, seed: int = 20261123) -> bool:
    """Create the schema and fill an empty PSIber database (20 employees or more; the awkward records are
    among the first 20); returns False if it already had employees."""
    if employees < 20:
        raise ValueError("the demo company needs at least 20 employees")
    create_schema(engine)
    with engine.begin() as connection:
        if connection.execute(text("SELECT COUNT(*) FROM employee")).scalar_one():
            return False
        connection.execute(text(sql("insert_payroll")), [
            {"payroll_code": code, "payroll_name": name, "uif_ref": f"U{index:07d}", "sdl_ref": f"L{index:08d}"}
            for index, (code, name) in enumerate(PAYROLLS, start=1)
        ])
        connection.execute(text(sql("insert_picklist_item")), [
            {"picklist": picklist, "item_value": value} for picklist, values in PICKLISTS.items() for value in values
        ])
        connection.execute(text(sql("insert_employee")), _employees(employees, random.Random(seed)))
    return True


# Requests filed in ESS before the first night (employee id, course short name): none of them has a Moodle
# account yet. 21 (payroll ADM) gets one from the users flow and is enrolled in both; 23 asks for the hidden
# DRV-OLD and 24 (payroll AMD) for a Driver Training course offered to ABG and ADM only, both refused as not
# offered; 16 (surname missing) gets no account, so is refused saying why.
DEMO_ESS_REQUESTS = ((21, "HS-101"), (21, "DRV-101"), (23, "DRV-OLD"), (24, "DRV-101"), (16, "HS-102"))


def file_demo_ess_requests(engine: Engine, integration_key: str, course_ids: dict[str, int]) -> int:
    """Enrolment requests as ESS files them (course ids from the Moodle site)."""
    filed = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    with engine.begin() as connection:
        connection.execute(text(sql("ess_insert_request")), [
            {"integration_name": integration_key, "employee_id": employee_id, "moodle_course_id": course_ids[shortname],
             "requested_at": filed, "approved_at": None} for employee_id, shortname in DEMO_ESS_REQUESTS])
    return len(DEMO_ESS_REQUESTS)

