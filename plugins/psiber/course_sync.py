"""The steps of the Moodle courses → PSIber courses flow (F3), one function per DAG task."""

from __future__ import annotations

import logging

import pandas as pd
from sqlalchemy import Engine

from moodle_provider.hooks.moodle import MoodleHook
from psiber.config import Integration
from psiber.course_plan import course_code, plan_course_changes, psiber_courses_from_moodle, real_courses
from psiber.moodle_validation import COURSE_COLUMNS, validate_moodle_courses
from psiber.psiber_db import save_courses, select_courses, select_picklists
from sync_common.invalid_records import check_invalid_share, invalid_outcomes
from sync_common.outcomes import OWNER_MOODLE_ADMIN
from sync_common.run_files import RunPath, read_json, write_json
from sync_common.step_outputs import step_file, write_outcomes

log = logging.getLogger(__name__)

# Moodle's courses and categories as this run read them (the results flow, ESS and field matching read them too),
# and what the courses flow's steps leave behind (outcomes and counts; the plan's writes).
MOODLE_COURSES, MOODLE_CATEGORIES = "moodle_courses.json", "moodle_categories.json"
READ, PLAN = step_file("courses.read"), step_file("courses.plan")


def extract_moodle_courses(hook: MoodleHook, run_dir: RunPath) -> dict:
    """All courses and categories: two calls, whatever the size of the site."""
    courses = hook.call("core_course_get_courses")
    categories = hook.call("core_course_get_categories")
    write_json(run_dir / MOODLE_COURSES, courses)
    write_json(run_dir / MOODLE_CATEGORIES, categories)
    write_outcomes(run_dir / READ, [], {"courses": {"in_moodle": len(real_courses(courses))}})
    return {"courses": len(real_courses(courses)), "categories": len(categories)}


def _course_frame(courses: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"id": int(c["id"]), "code": course_code(c), "fullname": c.get("fullname"),
                          "startdate": int(c.get("startdate") or 0), "enddate": int(c.get("enddate") or 0),
                          "visible": c.get("visible")} for c in courses], columns=list(COURSE_COLUMNS))


def plan_courses(integration: Integration, engine: Engine, run_dir: RunPath) -> dict:
    """Validate Moodle's courses, map the valid ones, and plan PSIber's changes; too many bad ones stop the run."""
    moodle_courses = read_json(run_dir / MOODLE_COURSES)
    courses = real_courses(moodle_courses)
    checked = validate_moodle_courses(_course_frame(courses))
    outcomes = invalid_outcomes(((p.record, p.reasons, p.owner) for p in checked.invalid), flow="courses")
    valid_ids = set(checked.valid["id"].astype(int))
    picklists = select_picklists(engine)
    wanted, mapping_outcomes = psiber_courses_from_moodle(
        [course for course in courses if int(course["id"]) in valid_ids],
        read_json(run_dir / MOODLE_CATEGORIES), integration, picklists)
    plan = plan_course_changes(wanted, select_courses(engine), integration, picklists.get("course_category", set()),
                               {int(course["id"]) for course in moodle_courses})
    outcomes += mapping_outcomes + plan.outcomes
    write_json(run_dir / PLAN, {"upserts": plan.upserts, "new_categories": plan.new_categories,
                                              "outcomes": [outcome.to_dict() for outcome in outcomes]})
    check_invalid_share(len(checked.invalid), checked.checked, integration.safety.max_invalid_share,
                        "Moodle courses", OWNER_MOODLE_ADMIN)
    return {"upserts": len(plan.upserts), "new_categories": len(plan.new_categories)}


def load_courses(integration: Integration, engine: Engine, run_dir: RunPath) -> dict:
    plan = read_json(run_dir / PLAN)
    written = save_courses(engine, integration.key, plan["upserts"], plan["new_categories"])
    log.info("PSIber courses written: %d; new course categories: %s", written, plan["new_categories"] or "none")
    return {"written": written}
