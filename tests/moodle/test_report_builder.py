"""Report Builder reports read in bulk: rows parsed into records, paging, the token user's time zone, and the checks
a run makes before it reads (report missing, not shared, wrong columns), against the stand-in over HTTP."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pytest

from moodle_provider.exceptions import OWNER_MOODLE, MoodleReportAccessError, MoodleReportMissingError
from moodle_provider.hooks.moodle import MoodleHook
from moodle_provider.report_builder import (
    ENROLMENT_RESULTS,
    USER_ACCESS,
    EnrolmentResult,
    ReportChangedError,
    ReportShapeError,
    ReportTimeZoneError,
    UserAccess,
    check_report,
    parse_display_date,
    parse_rows,
    read_report_rows,
    token_user_time_zone,
)
from moodle_stand_in import MoodleStandIn
from moodle_stand_in.reportbuilder import add_report, report_state

TOKEN = "0123456789abcdef0123456789abcdef"
LONDON, UTC = ZoneInfo("Europe/London"), ZoneInfo("UTC")
ENROLMENT_COLUMNS = ["course:idnumber", "course:shortname", "user:fullnamewithlink", "user:username", "user:idnumber",
                     "user:email", "enrolment:timestarted", "completion:completed", "completion:timecompleted",
                     "completion:grade"]
ACCESS_COLUMNS = ["user:fullnamewithlink", "user:username", "user:idnumber", "user:lastaccess"]
# Recorded rows (../shared/moodle-contract-reportbuilder 43 and 06), the token user in Europe/London
RECORDED_ENROLMENT = ["C001", "HR-C001",
                      '<a href="http://moodle.example/user/profile.php?id=2004">Ann  O\'Neil & Sons</a>', "aaa.oneil",
                      "EE&quot;&amp;&lt;1&gt;", "o&#039;neil@example.com",
                      "Thursday, 26 November 2026, 6:00 PM", "Yes", "Sunday, 6 December 2026, 6:00 PM", "72.50"]
NOT_COMPLETED = ["C001", "HR-C001", '<a href="http://moodle.example/user/profile.php?id=15">Emp No00012</a>',
                 "emp00012", "EE00012", "emp00012@example.com", "Wednesday, 29 July 2026, 7:52 PM", "", "", ""]
RECORDED_ACCESS = ['<a href="http://moodle.example/user/profile.php?id=2">Admin User</a>', "admin", "", ""]


def test_a_recorded_enrolment_row_becomes_a_typed_record():
    rows = [{"columns": RECORDED_ENROLMENT}, {"columns": NOT_COMPLETED}]
    assert parse_rows(1, ENROLMENT_RESULTS, rows, LONDON) == [
        EnrolmentResult(course_idnumber="C001", course_shortname="HR-C001", userid=2004, fullname="Ann  O'Neil & Sons",
                        username="aaa.oneil", user_idnumber='EE"&<1>', email="o'neil@example.com",
                        timestarted=1795716000, completed=True, timecompleted=1796580000, grade=72.5),
        EnrolmentResult(course_idnumber="C001", course_shortname="HR-C001", userid=15, fullname="Emp No00012",
                        username="emp00012", user_idnumber="EE00012", email="emp00012@example.com",
                        timestarted=1785351120, completed=None, timecompleted=None, grade=None)]
    assert parse_rows(3, USER_ACCESS, [{"columns": RECORDED_ACCESS}], LONDON) == [
        UserAccess(userid=2, fullname="Admin User", username="admin", user_idnumber="", lastaccess=None)]


def test_dates_are_read_in_the_token_users_zone_to_the_minute():
    # 40 says 1795809236 for the time 02 shows as "Friday, 27 November 2026, 7:53 PM": the seconds are lost
    assert parse_display_date("Friday, 27 November 2026, 7:53 PM", LONDON) == 1795809236 // 60 * 60
    # 45: October is summer time in London; the same moment reads 7:52 PM there and 6:52 PM in UTC
    assert parse_display_date("Monday, 12 October 2026, 7:52 PM", LONDON) == \
        parse_display_date("Monday, 12 October 2026, 6:52 PM", UTC) == 1791831120
    assert parse_display_date("Monday, 9 November 2026, 12:14 AM", UTC) == 1794183240
    assert parse_display_date("", UTC) is None


@pytest.mark.parametrize(("column", "value", "says"), [
    (9, "72,50", "column 'Grade' holds '72,50', not a grade"),
    (8, "27/11/2026 19:53", "column 'Time completed' holds '27/11/2026 19:53', not a date"),
    (7, "Complete", "column 'Completed' holds 'Complete', not a completed"),
    (2, "Emp No00012", "column 'Full name with link' holds 'Emp No00012', not a user link"),
])
def test_a_value_that_does_not_fit_its_column_names_the_report_row_column_and_the_administrator(column, value, says):
    row = list(NOT_COMPLETED)
    row[column] = value
    with pytest.raises(ReportShapeError, match=f"custom report 7 \\(enrolment results\\) row 2, {says}") as caught:
        parse_rows(7, ENROLMENT_RESULTS, [{"columns": NOT_COMPLETED}, {"columns": row}], UTC)
    assert caught.value.owner == OWNER_MOODLE and "Moodle administrator" in str(caught.value)


def test_a_row_with_another_column_count_is_refused():
    with pytest.raises(ReportShapeError, match="answers rows of 9 columns; it must have exactly these 10 columns"):
        parse_rows(1, ENROLMENT_RESULTS, [{"columns": NOT_COMPLETED[:9]}], UTC)


@pytest.fixture
def site():
    with MoodleStandIn(TOKEN) as stand_in:
        yield stand_in


def hook_for(monkeypatch, site: MoodleStandIn) -> MoodleHook:
    monkeypatch.setenv("AIRFLOW_CONN_MOODLE_TEST",
                       json.dumps({"conn_type": "http", "host": site.base_url, "password": TOKEN}))
    return MoodleHook("moodle_test", backoff_seconds=0.01)


def learners(site: MoodleStandIn, count: int) -> list[int]:
    """``count`` learners in one course, the i-th completed at 1796000040 + i minutes with grade 50 + i."""
    with site._lock:
        course = site.add_course("HR-C001", categoryid=1, idnumber="C001")["id"]
        ids = []
        for i in range(count):
            user = site.add_user(username=f"emp{i:05d}", firstname="Emp", lastname=f"No{i:05d}", idnumber=f"EE{i:05d}",
                                 email=f"emp{i:05d}@example.com", timezone="UTC")
            site.enrol(user["id"], course, timestart=1790000000)
            site.set_grade(course, user["id"], 50 + i)
            site.complete(course, user["id"], timecompleted=1796000040 + 60 * i)
            site.touch(user["id"], 1796000040 + 60 * i)
            ids.append(user["id"])
        return ids


def enrolment_report(site: MoodleStandIn, **options) -> int:
    with site._lock:
        return add_report(site, "HR results", "participants", options.pop("columns", ENROLMENT_COLUMNS),
                          sorting=["course:shortname", "user:username"],
                          filters=["completion:timecompleted"], **options)["id"]


def test_the_whole_report_is_read_page_by_page(site, monkeypatch):
    ids = learners(site, 7)
    report = enrolment_report(site)
    hook = hook_for(monkeypatch, site)
    records = read_report_rows(hook, report, ENROLMENT_RESULTS, perpage=3, zone=UTC)
    assert [(r.userid, r.timecompleted, r.grade, r.completed) for r in records] == \
        [(uid, 1796000040 + 60 * i, 50.0 + i, True) for i, uid in enumerate(ids)]
    assert [name for name, _ in site.calls].count("core_reportbuilder_retrieve_report") == 3  # 3 + 3 + 1 rows


def test_the_token_users_filter_narrows_what_is_read(site, monkeypatch):
    ids = learners(site, 5)
    report = enrolment_report(site)
    hook = hook_for(monkeypatch, site)
    assert hook.set_report_filters(report, {"completion:timecompleted_operator": 3,
                                            "completion:timecompleted_from": 1796000040 + 180,
                                            "completion:timecompleted_to": 0}) is True
    assert [r.userid for r in read_report_rows(hook, report, ENROLMENT_RESULTS, zone=UTC)] == ids[3:]
    assert hook.reset_report_filters(report) is True
    assert len(read_report_rows(hook, report, ENROLMENT_RESULTS, zone=UTC)) == 5


def test_the_zone_defaults_to_the_token_users_own(site, monkeypatch):
    learners(site, 1)
    with site._lock:
        site.users[2]["timezone"] = "Europe/London"  # the token's user: the stand-in's admin
    report = enrolment_report(site)
    hook = hook_for(monkeypatch, site)
    assert token_user_time_zone(hook) == LONDON
    [record] = read_report_rows(hook, report, ENROLMENT_RESULTS)
    assert record.timecompleted == 1796000040


def test_the_site_default_zone_is_refused_naming_what_to_set(site, monkeypatch):
    hook = hook_for(monkeypatch, site)  # the admin's timezone is "99", the site default
    with pytest.raises(ReportTimeZoneError, match="set the user's Timezone .* to UTC") as caught:
        token_user_time_zone(hook)
    assert caught.value.owner == OWNER_MOODLE
    with site._lock:
        site.users[2]["timezone"] = "Mars/Olympus"
    with pytest.raises(ReportTimeZoneError, match="'Mars/Olympus' is not a time zone name"):
        token_user_time_zone(hook)


class ShiftingReport:
    """A hook whose report gains a row between the first and second page."""

    def __init__(self):
        self.pages = 0

    def retrieve_report(self, report_id, page, perpage):
        self.pages += 1
        total = 3 if self.pages == 1 else 4
        return {"data": {"headers": list(ENROLMENT_RESULTS.headers), "totalrowcount": total,
                         "rows": [{"columns": NOT_COMPLETED}] * min(perpage, total - page * perpage)}}


def test_a_count_that_changes_between_pages_is_a_transient_error():
    with pytest.raises(ReportChangedError, match="changed while it was read: 3 rows, then 4") as caught:
        read_report_rows(ShiftingReport(), 1, ENROLMENT_RESULTS, perpage=2, zone=UTC)  # type: ignore[arg-type]
    assert caught.value.transient


def test_check_report_passes_a_fitting_report_and_notes_renamed_headings(site, monkeypatch):
    learners(site, 2)
    renamed = [{"column": "course:idnumber", "heading": "Course code"}, *ENROLMENT_COLUMNS[1:]]
    report = enrolment_report(site, columns=renamed)
    assert check_report(hook_for(monkeypatch, site), report, ENROLMENT_RESULTS) == [
        "column 1 is headed 'Course code', not 'Course ID number'"]


def test_check_report_names_a_missing_report(site, monkeypatch):
    with pytest.raises(MoodleReportMissingError, match="custom report 41 \\(user access\\) does not exist") as caught:
        check_report(hook_for(monkeypatch, site), 41, USER_ACCESS)
    assert "Moodle administrator" in str(caught.value)


def test_check_report_names_a_report_not_shared_with_the_token_user(site, monkeypatch):
    with site._lock:
        token_user = site.add_user(username="psiberws", firstname="PSIber", lastname="WS", timezone="UTC")
        site.set_token_user(token_user["id"])
        report = add_report(site, "Admin only", "users", ACCESS_COLUMNS, audience=["admin"])["id"]
    with pytest.raises(MoodleReportAccessError, match="is not shared with the web-service user: add an audience"):
        check_report(hook_for(monkeypatch, site), report, USER_ACCESS)
    with site._lock:
        report_state(site).can_view = False
    with pytest.raises(MoodleReportAccessError, match="not shared"):
        check_report(hook_for(monkeypatch, site), report, USER_ACCESS)


@pytest.mark.parametrize(("columns", "says"), [
    (ENROLMENT_COLUMNS[:9], "has 9 columns"),
    # ten columns, but the grade where the completion time should be: the first row's shape tells
    ([*ENROLMENT_COLUMNS[:8], "completion:grade", "completion:timecompleted"], "column 'Time completed' holds '50.00'"),
])
def test_check_report_refuses_wrong_columns(site, monkeypatch, columns, says):
    learners(site, 1)
    report = enrolment_report(site, columns=columns)
    with pytest.raises(ReportShapeError, match=says):
        check_report(hook_for(monkeypatch, site), report, ENROLMENT_RESULTS)


def test_check_report_refuses_a_report_of_another_source(site, monkeypatch):
    with site._lock:
        report = add_report(site, "Users", "users", ACCESS_COLUMNS)["id"]
    with pytest.raises(ReportShapeError, match="is made from the report source 'Users', not 'Course participants'"):
        check_report(hook_for(monkeypatch, site), report, ENROLMENT_RESULTS)


def test_the_hook_lists_the_reports_the_token_user_may_view(site, monkeypatch):
    enrolment_report(site)
    assert [r["name"] for r in hook_for(monkeypatch, site).list_reports()] == ["HR results"]
