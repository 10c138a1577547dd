"""Small builders for plain test tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from psiber.config import Integration

MOODLE_TOKEN = "feedfacefeedfacefeedfacefeedface"  # the step tests' stand-in token

# A minimal valid integration file.
GOOD = """
name: Driver Training
moodle_conn_id: moodle_demo
psiber_conn_id: psiber_demo
pass_result: Competent
fail_result: Not Yet Competent
pseudo_email_domain: JHB.com
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


EMPLOYEE_COLUMNS = ["employee_id", "employee_number", "payroll_code", "payroll_name", "uif_ref", "sdl_ref",
                    "first_name", "surname", "email", "id_number", "passport_number", "employment_status",
                    "employment_type", "gender", "disability"]


def integration(**overrides) -> Integration:
    settings = {"name": "Driver Training", "moodle_conn_id": "moodle", "psiber_conn_id": "psiber",
                "pass_result": "Competent", "fail_result": "Not Yet Competent", "pseudo_email_domain": "jhb.com"}
    return Integration.model_validate({**settings, **overrides})


def employee(employee_id: int, **fields) -> dict:
    row = {"employee_id": employee_id, "employee_number": f"E{employee_id:03d}", "payroll_code": "ABG",
           "payroll_name": "ABG Consulting", "uif_ref": "U1", "sdl_ref": "L1", "first_name": "Thabo",
           "surname": "Mokoena", "email": f"thabo{employee_id}@example.com", "id_number": "8001015009087",
           "passport_number": None, "employment_status": "Active", "employment_type": "Permanent",
           "gender": "Male", "disability": "No"}
    return {**row, **fields}


def employees(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=EMPLOYEE_COLUMNS)


def demo_connections(monkeypatch, moodle_url: str, token: str, runs: Path, **databases: dict) -> None:
    """What a demo integration's DAG run in a test reaches: the Moodle stand-in (Connection ``moodle_demo``) and
    the initial password of new users, each database by its Connection id (``psiber_demo={...}``), and the folder
    of its runs."""
    import json

    monkeypatch.setenv("AIRFLOW_CONN_MOODLE_DEMO", json.dumps({"conn_type": "http", "host": moodle_url,
                                                                "password": token}))
    monkeypatch.setenv("AIRFLOW_CONN_MOODLE_DEMO_INITIAL_PASSWORD",
                       json.dumps({"conn_type": "generic", "password": "Initial-Pa55!"}))
    for conn_id, connection in databases.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    monkeypatch.setenv("MOODLE_SYNC_DATA_DIR", str(runs))
