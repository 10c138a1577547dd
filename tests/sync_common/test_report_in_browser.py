"""Support's view, in a real browser: the demo started as the README says (the Moodle stand-in, Airflow's API
server, scheduler, DAG processor and triggerer, on free ports in a home of its own, FAB's auth manager with
the README's support role), then headless Chromium logs in as the support user, reads a run's Sync report
tab, follows a failed task's link to its log, opens Course status, reads the demo school's preview run, marked
as such, and is refused another integration's report and CSV.

Debian's chromium driven by Playwright (no browser download); scripts/test.sh installs chromium when absent.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from demo_airflow import DAG_ID, SCHOOL_DAG_ID, DemoAirflow, free_port, tour  # noqa: E402 - scripts, not a package

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo's Airflow after its first-start tour: a scheduled run, the next night's, one failed offline; the
    school's preview and first provisioning."""
    airflow = DemoAirflow(tmp_path_factory.mktemp("demo-ui"), port=free_port(), moodle_port=free_port(),
                          school_moodle_port=free_port(), parallelism=3)
    try:
        first_time = airflow.start_moodle()
        airflow.start()
        airflow.runs_after_tour = tour(airflow, first_time)
        yield airflow
    finally:
        airflow.stop()


def test_support_reads_the_sync_report_a_failed_tasks_log_and_course_status(demo, tmp_path):
    scheduled, night, offline = demo.runs_after_tour
    assert scheduled["run_type"] == "scheduled" and scheduled["state"] == "success"  # starting fails no run
    assert night["state"] == "success" and offline["state"] == "failed"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(demo.url)  # the auth manager's login page
        page.fill("input[name=username]", "support")
        page.fill("input[name=password]", demo.secrets()["support_password"])
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"^(?!.*/login).*$"))

        page.goto(f"{demo.url}/dags/{DAG_ID}/runs/{quote(scheduled['dag_run_id'], safe='')}")
        page.get_by_role("link", name="Sync report", exact=True).click()  # the run page's tab
        report = page.frame_locator("iframe")
        expect(report.get_by_role("heading", name="Sync report: Driver Training")).to_be_visible(timeout=30_000)
        counts = report.locator("table").first
        expect(counts).to_contain_text(re.compile(r"created\s+\d+"))
        expect(report.locator("#outcomes")).to_contain_text("e-mail address is malformed")
        expect(report.locator("#outcomes")).to_contain_text("PSIber HR")
        page.screenshot(path=tmp_path / "sync-report.png")
        report.get_by_role("link", name="next", exact=True).click()  # more records than a page holds
        expect(report.get_by_text(re.compile(r"page 2 of \d+"))).to_be_visible()

        page.goto(f"{demo.url}/dags/{DAG_ID}/plugin/record-history")  # one person's history, the DAG's tab
        history = page.frame_locator("iframe")
        history.locator("input[name=q]").fill("EE00013")
        history.get_by_role("button", name="Show").click()
        expect(history.locator("#history")).to_contain_text("e-mail address is malformed", timeout=30_000)
        history.locator("#history a").first.click()  # to that run's report, searched for the employee
        expect(history.locator("#outcomes")).to_contain_text("EE00013")
        page.screenshot(path=tmp_path / "record-history.png")

        page.goto(f"{demo.url}/dags/{DAG_ID}/runs/{quote(offline['dag_run_id'], safe='')}/plugin/sync-report")
        failed = page.frame_locator("iframe")
        expect(failed.locator("#state")).to_have_text("failed", timeout=30_000)
        expect(failed.locator("#failures")).to_contain_text("Moodle unreachable")  # why, who, what to do
        expect(failed.locator("#failures")).to_contain_text("Moodle administrator / IT")
        expect(failed.locator("#failures")).to_contain_text("Clear check_moodle_site once the site answers again")
        failed.get_by_role("link", name="check_moodle_site: its log").click()
        expect(page).to_have_url(re.compile(r"/tasks/check_moodle_site"))
        expect(page.get_by_text("Connection refused").first).to_be_visible(timeout=30_000)  # the task's log
        page.screenshot(path=tmp_path / "failed-task-log.png")

        page.goto(f"{demo.url}/dags/{DAG_ID}")
        page.get_by_role("link", name="Course status", exact=True).click()  # the DAG page's tab
        courses = page.frame_locator("iframe")
        expect(courses.locator("#courses")).to_contain_text("DRV-101")
        expect(courses.locator("#courses")).to_contain_text("Defensive Driving")
        courses.get_by_role("link", name="DRV-101").click()
        expect(courses.locator("#learners")).to_contain_text(re.compile(r"EE\d{5}"))
        page.screenshot(path=tmp_path / "course-status.png")

        school_runs = demo.runs(SCHOOL_DAG_ID)
        assert [(run["conf"], run["state"]) for run in school_runs] == [({"preview": True}, "success"),
                                                                        ({}, "success")]
        page.goto(f"{demo.url}/dags/{SCHOOL_DAG_ID}")
        page.get_by_role("link", name="Sync runs", exact=True).click()  # the school DAG's tab
        runs = page.frame_locator("iframe")
        preview_row = runs.locator(f'tr:has(a[title="{school_runs[0]["dag_run_id"]}"])')  # the raw id on hover
        expect(preview_row).to_contain_text("preview", timeout=30_000)
        expect(runs.locator(f'tr:has(a[title="{school_runs[1]["dag_run_id"]}"])')).not_to_contain_text("preview")
        preview_row.get_by_role("link").click()
        expect(runs.locator("#preview")).to_contain_text("nothing was written")
        expect(runs.locator("#outcomes")).to_contain_text("would_create")
        page.screenshot(path=tmp_path / "school-preview.png")
        page.goto(f"{demo.url}/dags/{SCHOOL_DAG_ID}/plugin/course-status")
        expect(page.frame_locator("iframe").locator("#no-course-status")).to_contain_text("PSIber integrations only")

        for other in (f"/sync-report/dags/psiber_moodle_other/runs/{quote(night['dag_run_id'], safe='')}",
                      f"/sync-report/dags/psiber_moodle_other/runs/{quote(night['dag_run_id'], safe='')}/outcomes.csv",
                      "/sync-report/dags/psiber_moodle_other/courses"):
            assert page.request.get(f"{demo.url}{other}").status == 403, other  # with the support user's cookie
        assert page.request.get(f"{demo.url}/sync-report/dags/{DAG_ID}/runs").status == 200
        browser.close()
    assert (tmp_path / "sync-report.png").stat().st_size > 10_000
