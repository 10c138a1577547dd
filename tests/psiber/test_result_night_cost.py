"""A quiet night's Moodle calls do not grow with the population when results come from Report Builder reports,
and a first load reads every enrolment in pages: calls counted at the stand-in, at two sizes, never timed."""

from __future__ import annotations

import json
from collections import Counter
from math import ceil

from result_sites import company_site, sync_results
from sqlalchemy import create_engine

from factories import MOODLE_TOKEN, integration
from moodle_provider.hooks.moodle import MoodleHook
from moodle_stand_in import MoodleStandIn
from moodle_stand_in.reportbuilder import add_recipe_reports
from psiber.demo_company import seed_demo_company

NOW = 1_796_032_800
DAY = 86_400
SIZES = (200, 800)  # employees
ALLOWED_GROWTH_PER_1000_EMPLOYEES = 5  # issue 20: a quiet night's calls grow by at most 5 per 1,000 employees
ROWS_PER_PAGE = 5000  # read_report_rows' page


def night_calls(tmp_path, monkeypatch, employees: int) -> tuple[Counter, Counter, int]:
    """The first load's and a quiet night's calls by function, and the site's enrolments."""
    engine = create_engine(f"sqlite:///{tmp_path / f'psiber-{employees}.db'}")
    seed_demo_company(engine, employees=employees)
    with MoodleStandIn(MOODLE_TOKEN) as moodle:
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "moodle", "host": moodle.base_url,
                                                              "password": MOODLE_TOKEN}))
        settings = integration(moodle_reports=add_recipe_reports(moodle), courses={
            "custom_field_matches": [{"moodle_field": "passrate", "psiber_element": "min_pass_rate"}]})
        courses = company_site(moodle, engine, settings, employees, NOW - 3 * DAY)
        hook = MoodleHook("moodle", backoff_seconds=0.01)
        counts = []
        for night, full in ((NOW, True), (NOW + DAY, False)):
            run_dir = tmp_path / f"run-{employees}-{night}"
            run_dir.mkdir()
            start = len(moodle.calls)
            sync_results(settings, hook, engine, run_dir, full=full, now=night)
            counts.append(Counter(name for name, _ in moodle.calls[start:]))
        enrolments = sum(len(members) for course, members in moodle.enrolments.items() if course in courses)
    return counts[0], counts[1], enrolments


def test_a_quiet_nights_calls_do_not_grow_with_the_population_and_the_first_load_reads_in_pages(tmp_path,
                                                                                                 monkeypatch):
    (small_first, small_night, _), (first, night, enrolments) = (night_calls(tmp_path, monkeypatch, size)
                                                                 for size in SIZES)
    growth = sum(night.values()) - sum(small_night.values())
    assert growth <= ALLOWED_GROWTH_PER_1000_EMPLOYEES * (SIZES[1] - SIZES[0]) / 1000, (small_night, night)
    assert "gradereport_user_get_grade_items" not in night  # nothing changed: no course to read
    per_user = {"core_enrol_get_users_courses", "core_completion_get_course_completion_status"}
    assert not per_user & set(first), first
    courses = max(6, SIZES[1] // 33)
    assert first["core_reportbuilder_retrieve_report"] == ceil(enrolments / ROWS_PER_PAGE)
    assert first["gradereport_user_get_grade_items"] <= courses  # once per course, never per learner
