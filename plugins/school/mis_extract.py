"""The steps that read the school MIS: extract people, classes and memberships, and keep the valid ones.

Each step reads its inputs from the run directory and writes its result there, so that any task can be re-run
from the Airflow UI on its own. Return values are small XComs.

A targeted run (``sync_only``: people's External IDs, ``sync_common.targeted_records``) keeps the listed people,
their memberships and those memberships' classes, and leaves the list in the run directory (``listed_people``),
where the plans read that nobody else may be taken for gone.
"""

from __future__ import annotations

import logging

import pandas as pd
from sqlalchemy import Engine

from school.config import SchoolIntegration
from school.school_db import select_classes, select_memberships, select_people
from school.validation import OWNER_MIS, validate_classes, validate_memberships, validate_people
from sync_common.invalid_records import check_invalid_share, invalid_outcomes
from sync_common.outcomes import Outcome
from sync_common.run_files import RunPath, read_frame, read_json, write_frame, write_json
from sync_common.step_outputs import step_file, write_outcomes
from sync_common.targeted_records import matching, not_found
from sync_common.validation import normalised_key

log = logging.getLogger(__name__)

# What validation leaves behind: the invalid records of every flow (the enrolments flow reads the people's).
INVALID = step_file("mis.validate")
EXTRACTED = step_file("mis.extract")
TARGETED = "targeted_records.json"
TABLES = ("people", "classes", "memberships")


def extracted(table: str) -> str:
    """The run file of a table as the MIS holds it (every flow reads who left, and which records exist)."""
    return f"{table}.parquet"


def valid(table: str) -> str:
    """The run file of a table's valid records, which the flows plan from."""
    return f"valid_{table}.parquet"


def extract_school(engine: Engine, run_dir: RunPath, listed: tuple[str, ...] = ()) -> dict:
    """The MIS's people, classes and memberships; in a targeted run, only the ``listed`` people's (a listed
    External ID the MIS does not have is a warning for the MIS administrator)."""
    frames = {"people": select_people(engine), "classes": select_classes(engine),
              "memberships": select_memberships(engine)}
    missing: list[Outcome] = []
    if listed:
        missing = not_found(listed, frames["people"]["external_id"].map(str), "the MIS", OWNER_MIS, "people")
        frames = listed_only(frames, listed)
    for name, frame in frames.items():
        write_frame(run_dir / extracted(name), frame)
    write_json(run_dir / TARGETED, list(listed))
    write_outcomes(run_dir / EXTRACTED, missing)
    counts = {name: len(frame) for name, frame in frames.items()}
    log.info("Extracted from the MIS%s: %s", " for a targeted run" if listed else "", counts)
    return counts


def listed_only(frames: dict[str, pd.DataFrame], listed: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """The listed people (by External ID, trimmed and in any letter case), their memberships and their classes."""
    keys = list(matching(listed))
    people = frames["people"][frames["people"]["external_id"].map(normalised_key).isin(keys)]
    memberships = frames["memberships"][frames["memberships"]["person_external_id"].map(normalised_key).isin(keys)]
    classes = frames["classes"][frames["classes"]["external_id"].isin(list(memberships["class_external_id"]))]
    return {"people": people.reset_index(drop=True), "classes": classes.reset_index(drop=True),
            "memberships": memberships.reset_index(drop=True)}


def listed_people(run_dir: RunPath) -> frozenset[str]:
    """The External IDs a targeted run syncs (as ``targeted_records.matching`` compares them); empty in a whole
    run."""
    path = run_dir / TARGETED
    return matching(read_json(path)) if path.exists() else frozenset()


def validate_school(integration: SchoolIntegration, run_dir: RunPath) -> dict:
    """Keep the valid records; report the others one by one; stop when too many people or classes are bad (not
    in a targeted run: its few people are listed by choice, and each invalid one is reported)."""
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
        if not listed_people(run_dir):
            check_invalid_share(len(results[name].invalid), results[name].checked,
                                integration.safety.max_invalid_share, f"MIS {name}", OWNER_MIS)
    return {name: {"checked": result.checked, "invalid": len(result.invalid)} for name, result in results.items()}
