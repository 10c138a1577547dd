"""The steps of the Moodle courses → PSIber courses flow (F3), one function per DAG task."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine

from moodle.hook import MoodleHook
from psiber_moodle.config import Integration
from psiber_moodle.course_plan import plan_course_changes, psiber_courses_from_moodle
from psiber_moodle.psiber_db import save_courses, select_courses, select_picklists
from psiber_moodle.run_files import read_json, write_json

log = logging.getLogger(__name__)


def extract_moodle_courses(hook: MoodleHook, run_dir: Path) -> dict:
    """All courses and categories: two calls, whatever the size of the site."""
    courses = hook.call("core_course_get_courses")
    categories = hook.call("core_course_get_categories")
    write_json(run_dir / "moodle_courses.json", courses)
    write_json(run_dir / "moodle_categories.json", categories)
    return {"courses": sum(course.get("format") != "site" for course in courses), "categories": len(categories)}


def plan_courses(integration: Integration, engine: Engine, run_dir: Path) -> dict:
    moodle_courses = read_json(run_dir / "moodle_courses.json")
    picklists = select_picklists(engine)
    wanted, outcomes = psiber_courses_from_moodle(
        moodle_courses, read_json(run_dir / "moodle_categories.json"), integration, picklists)
    plan = plan_course_changes(wanted, select_courses(engine), integration, picklists.get("course_category", set()),
                               {int(course["id"]) for course in moodle_courses})
    outcomes += plan.outcomes
    write_json(run_dir / "course_plan.json", {"upserts": plan.upserts, "new_categories": plan.new_categories,
                                              "outcomes": [outcome.to_dict() for outcome in outcomes]})
    return {"upserts": len(plan.upserts), "new_categories": len(plan.new_categories)}


def load_courses(integration: Integration, engine: Engine, run_dir: Path) -> dict:
    plan = read_json(run_dir / "course_plan.json")
    written = save_courses(engine, integration.key, plan["upserts"], plan["new_categories"])
    log.info("PSIber courses written: %d; new course categories: %s", written, plan["new_categories"] or "none")
    return {"written": written}
