"""The stand-in's Report Builder beyond what the live recordings show: filters kept per token user, a completion
record without a time ("No"), relative conditions, reports without sorting, manual audiences, and the state file."""

from __future__ import annotations

import json

import pytest

from moodle_stand_in import MoodleError, MoodleStandIn
from moodle_stand_in.reportbuilder import (
    add_report,
    filters_reset,
    list_reports,
    report_state,
    retrieve_report,
    set_filters,
    start_completion,
)

ACCESS_COLUMNS = ["user:fullnamewithlink", "user:username", "user:idnumber", "user:lastaccess"]
SINCE = {"user:lastaccess_operator": 3, "user:lastaccess_from": 1796000040, "user:lastaccess_to": 0}


def usernames(site: MoodleStandIn, report: int) -> list[str]:
    return [row["columns"][1] for row in retrieve_report(site, report, 0, 0)["data"]["rows"]]


@pytest.fixture
def site():
    site = MoodleStandIn("token")
    for name, seen in (("carol", 1796000100), ("alice", 1795000000), ("bob", 0)):
        user = site.add_user(username=name, firstname=name.title(), lastname="Learner", timezone="UTC")
        if seen:
            site.touch(user["id"], seen)
    return site


def access_report(site: MoodleStandIn, **options) -> int:
    return add_report(site, "Access", "users", ACCESS_COLUMNS, filters=["user:lastaccess"], **options)["id"]


def test_filters_are_kept_per_token_user(site):
    report = access_report(site, sorting=["user:username"])
    set_filters(site, report, "", json.dumps(SINCE))  # the admin's
    assert usernames(site, report) == ["carol"]
    site.set_token_user(3)  # carol reads the same report unfiltered
    assert usernames(site, report) == ["admin", "alice", "bob", "carol"]
    filters_reset(site, report, "")
    site.set_token_user(2)
    assert usernames(site, report) == ["carol"]


def test_values_that_are_not_json_replace_the_stored_filters_with_none():
    site = MoodleStandIn("token")
    report = access_report(site)
    set_filters(site, report, "", json.dumps(SINCE))
    set_filters(site, report, "", "since=yesterday")
    assert retrieve_report(site, report, 0, 0)["data"]["totalrowcount"] == 1  # the admin, never seen


def test_a_condition_counts_back_from_the_sites_clock(site):
    report = access_report(site, sorting=["user:username"],
                           conditions={"user:lastaccess_operator": 4, "user:lastaccess_value": 2,
                                       "user:lastaccess_unit": 0})  # the last 2 hours
    report_state(site).clock = 1796000100 + 7200
    assert usernames(site, report) == ["carol"]
    report_state(site).clock += 1
    assert usernames(site, report) == []


def test_without_sorting_rows_come_in_the_tables_order(site):
    assert usernames(site, access_report(site)) == ["admin", "carol", "alice", "bob"]


def test_a_completion_record_without_a_time_reads_no():
    site = MoodleStandIn("token")
    course = site.add_course("HR-C001", categoryid=1)["id"]
    for name in ("done", "started", "new"):
        site.enrol(site.add_user(username=name, firstname="A", lastname="B")["id"], course)
    site.complete(course, 3, timecompleted=1796000040)
    start_completion(site, course, 4)
    report = add_report(site, "Results", "participants", ["user:username", "completion:completed"],
                        sorting=["user:username"])["id"]
    rows = [row["columns"] for row in retrieve_report(site, report, 0, 0)["data"]["rows"]]
    assert rows == [["done", "Yes"], ["new", ""], ["started", "No"]]


def test_a_manual_audience_lets_in_only_its_users(site):
    report = access_report(site, audience=["alice"])
    site.set_token_user(4)  # alice
    assert [r["name"] for r in list_reports(site, 0, 0)["reports"]] == ["Access"]
    site.set_token_user(3)
    assert list_reports(site, 0, 0)["reports"] == []
    with pytest.raises(MoodleError, match="You cannot view this report"):
        retrieve_report(site, report, 0, 10)


def test_reports_and_filters_survive_a_restart(tmp_path):
    site = MoodleStandIn("token", state_path=tmp_path / "state.json")
    site.touch(site.add_user(username="alice", firstname="Alice", lastname="L")["id"], 1796000100)
    report = access_report(site, sorting=["user:username"])
    assert usernames(MoodleStandIn("token", state_path=tmp_path / "state.json"), report) == ["admin", "alice"]
    set_filters(site, report, "", json.dumps(SINCE))
    assert usernames(MoodleStandIn("token", state_path=tmp_path / "state.json"), report) == ["alice"]


def test_filter_values_of_a_filter_the_report_lacks_are_ignored(site):
    report = access_report(site, sorting=["user:username"])
    set_filters(site, report, "", json.dumps({"user:username_operator": 3, "user:username_value": "alice"}))
    assert usernames(site, report) == ["admin", "alice", "bob", "carol"]


def test_the_default_setup_leaves_suspended_users_out_of_the_users_source(site):
    site.users[4]["suspended"] = 1  # alice
    assert usernames(site, access_report(site, sorting=["user:username"])) == ["admin", "bob", "carol"]


def test_a_column_the_datasource_lacks_is_refused_at_set_up():
    with pytest.raises(ValueError, match="no column 'completion:grade'"):
        add_report(MoodleStandIn("token"), "Access", "users", ["completion:grade"])
