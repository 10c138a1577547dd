"""Support's view, in a real browser: the demo started as the README says (the Moodle stand-in, Airflow's API
server, scheduler, DAG processor and triggerer, on free ports in a home of its own, FAB's auth manager with
the README's support role), then headless Chromium logs in as the support user.

It reads a run's Sync report tab (names beside the numbers), pages it and opens a page's "Link to this page" in a
new tab, searches one person's Record history, opens Course status with its totals, reads the demo school's
preview run, marked as such, sees an unknown run's address as a page in Airflow's frame, and is refused another
integration's report and CSV. Then, the day a night fails: it reads why the failed run failed, follows the
failed task's link to its log, clears the run with Airflow's Clear dialog and sees its history keep the failure;
after HR fixes an employee's e-mail, it triggers a run of that employee alone from Airflow's trigger form
(`sync_only`), reads that run's report (targeted, the employee created, named) and the employee's history.

Debian's chromium driven by Playwright (no browser download); scripts/test.sh installs chromium when absent.
Screenshots of each step land in the test's tmp dir; the assertions read the pages.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from demo_airflow import DAG_ID, FINISHED, SCHOOL_DAG_ID, DemoAirflow, free_port, tour  # noqa: E402 - scripts

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPORTS = "/plugin/sync-reports/sync-report"  # a report page's address inside Airflow's frame ("Link to this page")
FIXED_EMPLOYEE = "EE00013"  # the demo's malformed e-mail, which HR fixes


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


@pytest.fixture
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def support_page(browser: Browser, demo: DemoAirflow) -> Page:
    """A tab logged in as the support user; further tabs of its context share the login."""
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(demo.url)  # the auth manager's login page
    page.fill("input[name=username]", "support")
    page.fill("input[name=password]", demo.secrets()["support_password"])
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"^(?!.*/login).*$"))
    return page


def run_page(demo: DemoAirflow, run_id: str, dag_id: str = DAG_ID) -> str:
    return f"{demo.url}/dags/{dag_id}/runs/{quote(run_id, safe='')}"


def wait_for_run(demo: DemoAirflow, wanted, what: str, timeout: float = 600) -> dict:
    """The first run of the demo DAG that ``wanted`` accepts, polling Airflow's API until one does."""
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        seen = demo.runs()
        found = next((run for run in seen if wanted(run)), None)
        if found is not None:
            return found
        time.sleep(3)
    raise TimeoutError(f"no run {what} within {timeout} s; runs: {[(run['dag_run_id'], run['state']) for run in seen]}")


def test_support_reads_the_sync_report_a_record_history_and_course_status(demo, browser, tmp_path):
    scheduled, night, offline = demo.runs_after_tour
    assert scheduled["run_type"] == "scheduled" and scheduled["state"] == "success"  # starting fails no run
    assert night["state"] == "success" and offline["state"] == "failed"
    page = support_page(browser, demo)

    page.goto(run_page(demo, scheduled["dag_run_id"]))
    page.get_by_role("link", name="Sync report", exact=True).click()  # the run page's tab
    report = page.frame_locator("iframe")
    expect(report.get_by_role("heading", name="Sync report: Driver Training")).to_be_visible(timeout=30_000)
    expect(report.locator("table").first).to_contain_text(re.compile(r"created\s+\d+"))
    malformed = report.locator("#outcomes tr", has_text="e-mail address is malformed").first
    expect(malformed).to_contain_text("PSIber HR")
    expect(malformed.locator("td").nth(2)).to_have_text(re.compile(r"\w+ \w+"))  # the name beside the number
    page.screenshot(path=tmp_path / "sync-report.png")
    report.get_by_role("link", name="next", exact=True).click()  # more records than a page holds
    expect(report.get_by_text(re.compile(r"page 2 of \d+"))).to_be_visible()
    first_of_page_2 = report.locator("#outcomes tr").nth(1).inner_text()
    link = report.locator("#page-link").get_attribute("href") or ""
    assert link.startswith(f"{REPORTS}/dags/{DAG_ID}/runs/") and link.endswith("page=2"), link

    shared = page.context.new_page()  # the address a colleague was sent, opened in a tab of its own
    shared.goto(f"{demo.url}{link}")
    sent = shared.frame_locator("iframe")
    expect(sent.get_by_text(re.compile(r"page 2 of \d+"))).to_be_visible(timeout=30_000)
    expect(sent.locator("#outcomes tr").nth(1)).to_have_text(first_of_page_2, use_inner_text=True)
    expect(shared.get_by_role("link", name="Sync reports")).to_be_visible()  # Airflow's navigation around it
    shared.screenshot(path=tmp_path / "link-to-this-page.png")
    shared.goto(f"{demo.url}{REPORTS}/dags/{DAG_ID}/runs/no_such_run")  # a mistyped address
    mistyped = shared.frame_locator("iframe")
    expect(mistyped.locator("#error")).to_have_text("Not found", timeout=30_000)
    expect(mistyped.locator("body")).to_contain_text("no sync report for run 'no_such_run'")
    expect(mistyped.locator("body")).not_to_contain_text('{"detail"')
    shared.screenshot(path=tmp_path / "error-page.png")
    shared.close()

    page.goto(f"{demo.url}/dags/{DAG_ID}/plugin/record-history")  # one person's history, the DAG's tab
    history = page.frame_locator("iframe")
    history.locator("input[name=q]").fill(FIXED_EMPLOYEE)
    history.get_by_role("button", name="Show").click()
    expect(history.locator("#history")).to_contain_text("e-mail address is malformed", timeout=30_000)
    history.locator("#history a").first.click()  # to that run's report, searched for the employee
    expect(history.locator("#outcomes")).to_contain_text(FIXED_EMPLOYEE)
    page.screenshot(path=tmp_path / "record-history.png")

    page.goto(f"{demo.url}/dags/{DAG_ID}")
    page.get_by_role("link", name="Course status", exact=True).click()  # the DAG page's tab
    courses = page.frame_locator("iframe")
    expect(courses.locator("#courses")).to_contain_text("DRV-101")
    expect(courses.locator("#courses")).to_contain_text("Defensive Driving")
    expect(courses.locator("#totals")).to_contain_text(re.compile(r"Total of \d+ courses counted"))
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
    assert (tmp_path / "sync-report.png").stat().st_size > 10_000


def test_support_clears_a_failed_run_then_syncs_one_employee_now(demo, browser, tmp_path):
    offline = demo.runs_after_tour[2]
    page = support_page(browser, demo)

    page.goto(f"{run_page(demo, offline['dag_run_id'])}/plugin/sync-report")
    failed = page.frame_locator("iframe")
    expect(failed.locator("#state")).to_have_text("failed", timeout=30_000)
    expect(failed.locator("#failures")).to_contain_text("Moodle unreachable")  # why, who, what to do
    expect(failed.locator("#failures")).to_contain_text("Moodle administrator / IT")
    expect(failed.locator("#failures")).to_contain_text("Clear check_moodle_site once the site answers again")
    page.screenshot(path=tmp_path / "failed-run.png")
    failed.get_by_role("link", name="check_moodle_site: its log").click()
    expect(page).to_have_url(re.compile(r"/tasks/check_moodle_site"))
    expect(page.get_by_text("Connection refused").first).to_be_visible(timeout=30_000)  # the task's log
    page.screenshot(path=tmp_path / "failed-task-log.png")

    page.goto(run_page(demo, offline["dag_run_id"]))  # Moodle answers again: support clears the run
    page.get_by_role("button", name="Press shift+c to clear").first.click()  # the run's Clear, beside its state
    clear = page.get_by_role("dialog")
    expect(clear).to_contain_text("Clear Dag Run")
    clear.get_by_role("button", name="Clear only failed tasks").click()
    expect(clear).to_contain_text("check_moodle_site")
    page.screenshot(path=tmp_path / "clear-dialog.png")
    clear.get_by_role("button", name="Confirm").click()
    expect(clear).to_be_hidden(timeout=30_000)
    again = wait_for_run(demo, lambda run: run["dag_run_id"] == offline["dag_run_id"] and run["state"] in FINISHED
                         and run["end_date"] != offline["end_date"], "cleared that finished again")
    assert again["state"] == "success", again
    page.get_by_role("link", name="Sync report", exact=True).click()
    cleared = page.frame_locator("iframe")
    expect(cleared.locator("#state")).to_have_text("success", timeout=30_000)
    steps = cleared.locator("#history li")  # the failure stays in the run's history
    expect(steps.filter(has_text="failed at")).to_contain_text("check_moodle_site: Moodle unreachable")
    expect(steps.filter(has_text="cleared at")).to_contain_text("by support")
    expect(steps.last).to_contain_text("succeeded at")
    page.screenshot(path=tmp_path / "cleared-run-history.png")

    psiber = create_engine(f"sqlite:///{demo.home / 'psiber.db'}")  # HR fixes the employee's e-mail in PSIber
    with psiber.begin() as connection:
        connection.execute(text("UPDATE employee SET email = 'fixed.by.hr@abg-demo.co.za' WHERE employee_number = :n"),
                           {"n": FIXED_EMPLOYEE})
        name = " ".join(connection.execute(text("SELECT first_name, surname FROM employee WHERE employee_number = :n"),
                                           {"n": FIXED_EMPLOYEE}).one())
    psiber.dispose()

    page.goto(f"{demo.url}/dags/{DAG_ID}")  # "can you push it now?": Trigger, with the one employee number
    page.get_by_role("button", name="Trigger Dag").click()
    trigger = page.get_by_role("dialog")
    trigger.locator("textarea[name=element_sync_only]").fill(FIXED_EMPLOYEE)  # "Sync only these records"
    page.screenshot(path=tmp_path / "trigger-form.png")
    trigger.get_by_role("button", name="Trigger", exact=True).click()
    expect(trigger).to_be_hidden(timeout=30_000)
    targeted = wait_for_run(demo, lambda run: (run["conf"] or {}).get("sync_only") == [FIXED_EMPLOYEE]
                            and run["state"] in FINISHED, f"of {FIXED_EMPLOYEE} alone that finished")
    assert targeted["state"] == "success" and targeted["triggering_user_name"] == "support", targeted

    page.goto(run_page(demo, targeted["dag_run_id"]))
    page.get_by_role("link", name="Sync report", exact=True).click()
    report = page.frame_locator("iframe")
    expect(report.locator("#targeted")).to_contain_text(f"Targeted run: {FIXED_EMPLOYEE}", timeout=30_000)
    employee_rows = report.locator("#outcomes tr", has_text=FIXED_EMPLOYEE)
    expect(employee_rows).to_have_count(1)  # nobody else's record
    expect(employee_rows).to_contain_text(re.compile(rf"users\s+{FIXED_EMPLOYEE}\s+{name}\s+created"),
                                            use_inner_text=True)
    page.screenshot(path=tmp_path / "targeted-run.png")

    report.locator("input[name=q]").fill(FIXED_EMPLOYEE)
    report.get_by_role("button", name="Show").click()
    report.locator("#record-history").click()  # "EE00013 in every run"
    rows = report.locator("#history tr")
    expect(rows.nth(1)).to_contain_text(re.compile(rf"{FIXED_EMPLOYEE}\s+{name}\s+created"),
                                          use_inner_text=True, timeout=30_000)
    expect(report.locator("#history")).to_contain_text("e-mail address is malformed")  # the nights before the fix
    page.screenshot(path=tmp_path / "employee-history.png")
