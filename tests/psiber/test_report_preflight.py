"""PSIber's preflight with Report Builder reports in the integration file (moodle_reports): the Report Builder
functions are required then, and each report must exist, be shared with the web-service user and have its layout's
columns; the web-service user's time zone must be one the dates can be read in. Each failure fails the run at once,
naming the Moodle administrator's fix."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from factories import integration
from moodle_provider.hooks.moodle import MoodleHook
from moodle_stand_in.reportbuilder import RECIPE_ENROLMENT_COLUMNS, add_recipe_reports, add_report
from psiber.preflight import preflight
from sync_common.task_failures import fail_fast_unless_transient


def run_preflight(**settings) -> dict:
    return fail_fast_unless_transient(preflight)(integration(**settings), MoodleHook("moodle", backoff_seconds=0.01))


@pytest.fixture
def reports(moodle):
    """The two reports as the README's recipe makes them, a learner in each, and the web-service user in UTC."""
    with moodle._lock:
        user = moodle.add_user(username="emp1", firstname="Emp", lastname="One", email="emp1@example.com")
        course = moodle.add_course("HR-C001", categoryid=1, idnumber="C001")["id"]
        moodle.enrol(user["id"], course)
        return add_recipe_reports(moodle)


def test_without_reports_no_report_function_is_asked_for(moodle):
    assert "reports_checked" not in run_preflight()
    assert [name for name, _ in moodle.calls] == ["core_webservice_get_site_info"]


def test_configured_reports_are_checked_and_the_time_zone_read(moodle, reports):
    checked = run_preflight(moodle_reports=reports)
    assert checked["reports_checked"] == 2 and checked["report_time_zone"] == "UTC"


def test_the_report_functions_are_required_once_reports_are_configured(moodle, reports):
    moodle._functions = [name for name in moodle.functions if name != "core_reportbuilder_set_filters"]
    with pytest.raises(AirflowFailException, match="lacks core_reportbuilder_set_filters"):
        run_preflight(moodle_reports=reports)


def test_a_missing_report_fails_the_run_naming_the_setting(moodle, reports):
    with pytest.raises(AirflowFailException, match=r"custom report 99 \(user access\) does not exist.*"
                                                   r"moodle_reports.*owner: Moodle administrator"):
        run_preflight(moodle_reports={**reports, "user_access": 99})


def test_a_report_with_the_wrong_columns_fails_the_run(moodle, reports):
    with moodle._lock:
        wrong = add_report(moodle, "Results", "participants", RECIPE_ENROLMENT_COLUMNS[:9])["id"]
    with pytest.raises(AirflowFailException, match=r"custom report \d+ \(enrolment results\) has 9 columns"):
        run_preflight(moodle_reports={"enrolment_results": wrong})


def test_the_site_default_time_zone_fails_the_run(moodle, reports):
    moodle.users[2]["timezone"] = "99"
    with pytest.raises(AirflowFailException, match="time zone is the site default.*to UTC"):
        run_preflight(moodle_reports=reports)
