"""The steps that read the school MIS: extract people, classes and memberships, and keep the valid ones.

Each step reads its inputs from the run directory and writes its result there, so that any task can be re-run
from the Airflow UI on its own. Return values are small XComs.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from school.config import SchoolIntegration
from school.school_db import select_classes, select_memberships, select_people
from school.validation import OWNER_MIS, validate_classes, validate_memberships, validate_people
from sync_common.invalid_records import check_invalid_share, invalid_outcomes
from sync_common.run_files import RunPath, read_frame, write_frame
from sync_common.step_outputs import step_file, write_outcomes

log = logging.getLogger(__name__)

# What validation leaves behind: the invalid records of every flow (the enrolments flow reads the people's).
INVALID = step_file("mis.validate")
TABLES = ("people", "classes", "memberships")


def extracted(table: str) -> str:
    """The run file of a table as the MIS holds it (every flow reads who left, and which records exist)."""
    return f"{table}.parquet"


def valid(table: str) -> str:
    """The run file of a table's valid records, which the flows plan from."""
    return f"valid_{table}.parquet"


def extract_school(engine: Engine, run_dir: RunPath) -> dict:
    frames = {"people": select_people(engine), "classes": select_classes(engine),
              "memberships": select_memberships(engine)}
    for name, frame in frames.items():
        write_frame(run_dir / extracted(name), frame)
    counts = {name: len(frame) for name, frame in frames.items()}
    log.info("Extracted from the MIS: %s", counts)
    return counts


def validate_school(integration: SchoolIntegration, run_dir: RunPath) -> dict:
    """Keep the valid records; report the others one by one; stop when too many people or classes are bad."""
    results = {"people": validate_people(read_frame(run_dir / extracted("people"))),
               "classes": validate_classes(read_frame(run_dir / extracted("classes"))),
               "memberships": validate_memberships(read_frame(run_dir / extracted("memberships")))}
    outcomes = []
    for name, result in results.items():
        write_frame(run_dir / valid(name), result.valid)
        flow = "enrolments" if name == "memberships" else name
        outcomes += invalid_outcomes(((p.record, p.reasons, p.owner) for p in result.invalid), flow=flow)
    write_outcomes(run_dir / INVALID, outcomes)
    for name in ("people", "classes"):
        check_invalid_share(len(results[name].invalid), results[name].checked,
                            integration.safety.max_invalid_share, f"MIS {name}", OWNER_MIS)
    return {name: {"checked": result.checked, "invalid": len(result.invalid)} for name, result in results.items()}
