"""The results flow's Report Builder reads: the filters set before each read, rows turned into completion entries."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

from moodle_provider.report_builder import EnrolmentResult
from psiber.result_reports import (
    LAST_ACCESS,
    TIME_COMPLETED,
    completion_entries,
    read_active_users,
    read_enrolments,
    since_filter,
)

RECORDINGS = Path(__file__).resolve().parents[3] / "shared" / "moodle-contract-reportbuilder"
LONDON = ZoneInfo("Europe/London")


def recorded_filter(name: str) -> dict:
    return json.loads(json.loads((RECORDINGS / name).read_text())["request"]["params"]["values"])


def test_the_since_filters_are_the_ones_a_live_site_applied():
    assert since_filter(TIME_COMPLETED, 1796496726) == recorded_filter("21-set-filters-timecompleted-since.json")
    assert since_filter(LAST_ACCESS, 1796496726) == recorded_filter("27-set-filters-lastaccess-since.json")


def enrolment(user: int, course: str, completed: bool | None, when: int | None = None,
              grade: float | None = None) -> EnrolmentResult:
    return EnrolmentResult(course_idnumber=course, course_shortname=course, userid=user, fullname="Emp", username="u",
                           user_idnumber="EE1", email="e@example.com", timestarted=None, completed=completed,
                           timecompleted=when, grade=grade)


def test_report_rows_become_the_completion_entries_of_linked_users_in_known_courses():
    rows = [enrolment(4, "C001", True, 1795809180, 72.5),
            enrolment(4, "C001", True, 1795809180),  # enrolled by a second method: the same enrolment
            enrolment(5, "C001", None),  # no completion record
            enrolment(5, "C002", False, grade=40.0),
            enrolment(6, "C001", True, 1795809180, 80.0),  # not linked (a teacher, an unlinked account)
            enrolment(4, "GONE", True, 1795809180)]  # a course the run did not read
    assert completion_entries(rows, {"C001": 2, "C002": 3}, [4, 5]) == [
        {"courseid": 2, "userid": 4, "completed": True, "timecompleted": 1795809180, "graded": True},
        {"courseid": 2, "userid": 5, "completed": False, "timecompleted": None, "graded": False},
        {"courseid": 3, "userid": 5, "completed": False, "timecompleted": None, "graded": True}]


class ReportSite:
    """A hook answering one report of ``rows`` (display strings), recording the filter calls and pages asked."""

    def __init__(self, rows: list[list[str]]):
        self.rows, self.calls = rows, []

    def set_report_filters(self, report_id, values):
        self.calls.append(("set", report_id, values))
        return True

    def reset_report_filters(self, report_id):
        self.calls.append(("reset", report_id))
        return True

    def retrieve_report(self, report_id, page=0, perpage=0):
        self.calls.append(("page", report_id, page))
        headers = ["h"] * len(self.rows[0])
        return {"data": {"headers": headers, "totalrowcount": len(self.rows),
                         "rows": [{"columns": row} for row in self.rows[page * perpage:(page + 1) * perpage]]}}


def link(user: int) -> str:
    return f'<a href="http://moodle.example/user/profile.php?id={user}">Emp No{user:05d}</a>'


def test_a_full_read_clears_the_filters_first_and_a_night_sets_its_since_before_reading(monkeypatch):
    row = ["C001", "HR-C001", link(4), "emp00001", "EE00001", "emp00001@example.com",
           "Friday, 27 November 2026, 7:53 PM", "Yes", "Friday, 27 November 2026, 7:53 PM", "72.50"]
    site = ReportSite([row])
    [full] = read_enrolments(site, 1, 0, LONDON)  # type: ignore[arg-type]
    assert site.calls == [("reset", 1), ("page", 1, 0)]
    assert (full.userid, full.completed, full.timecompleted, full.grade) == (4, True, 1795809180, 72.5)
    site = ReportSite([[*row[:8], "Sunday, 6 December 2026, 7:00 PM", "72.50"]])
    read_enrolments(site, 1, 1796496726, LONDON)  # type: ignore[arg-type]
    assert site.calls == [("set", 1, since_filter(TIME_COMPLETED, 1796496726)), ("page", 1, 0)]

    users = ReportSite([[link(4), "emp00001", "EE00001", "Sunday, 6 December 2026, 6:55 PM"]])
    [active] = read_active_users(users, 3, 1796496726, LONDON)  # type: ignore[arg-type]
    assert users.calls == [("set", 3, since_filter(LAST_ACCESS, 1796496726)), ("page", 3, 0)]
    assert active.userid == 4


def test_results_come_from_a_report_only_when_the_enrolment_results_report_is_configured():
    import pytest
    from pydantic import ValidationError

    from factories import integration
    from psiber.result_read_tasks import results_from_report

    assert results_from_report(integration(moodle_reports={"enrolment_results": 7, "user_access": 8}))
    assert not results_from_report(integration(moodle_reports={"user_access": 8}))
    assert not results_from_report(integration())
    with pytest.raises(ValidationError, match="enrolment_result"):
        integration(moodle_reports={"enrolment_result": 7})


def test_a_report_without_the_since_filter_stops_the_night_naming_the_filter_to_add():
    import pytest

    from moodle_provider.report_builder import ReportShapeError

    london_minute = "Sunday, 6 December 2026, 6:52 PM"  # 1796496720: 6 s before 'since', the minute it is in
    users = ReportSite([[link(4), "emp00001", "EE00001", london_minute]])
    assert [row.userid for row in read_active_users(users, 3, 1796496726, LONDON)] == [4]  # type: ignore[arg-type]
    ignored = ReportSite([[link(4), "emp00001", "EE00001", "Saturday, 5 December 2026, 6:51 PM"],
                          [link(5), "emp00002", "EE00002", ""]])
    with pytest.raises(ReportShapeError, match=r"custom report 3 \(user access\) .* add the filter 'Last access'"):
        read_active_users(ignored, 3, 1796496726, LONDON)  # type: ignore[arg-type]
    row = ["C001", "HR-C001", link(4), "emp00001", "EE00001", "e@example.com", "", "", "", ""]
    with pytest.raises(ReportShapeError, match="add the filter 'Time completed'"):
        read_enrolments(ReportSite([row]), 1, 1796496726, LONDON)  # type: ignore[arg-type]


def test_with_only_the_user_access_report_a_full_read_looks_everyone_up_and_a_night_asks_the_report(moodle, tmp_path):
    from sqlalchemy import create_engine

    from factories import integration
    from moodle_provider.hooks.moodle import MoodleHook
    from moodle_stand_in.reportbuilder import add_recipe_reports
    from psiber import result_sync
    from psiber.demo_company import seed_demo_company
    from psiber.psiber_db import save_result_parts, upsert_user_links
    from sync_common.run_files import write_json

    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    seed_demo_company(engine, employees=20)
    settings = integration(moodle_reports={"user_access": add_recipe_reports(moodle)["user_access"]})
    seen, unseen = (moodle.add_user(username=f"{name}@example.com", email=f"{name}@example.com")["id"]
                    for name in ("seen", "unseen"))
    moodle.touch(seen, 1_796_000_000)
    upsert_user_links(engine, settings.key, [(1, seen, "seen@example.com"), (2, unseen, "unseen@example.com")])
    write_json(tmp_path / "moodle_courses.json", [])
    hook = MoodleHook("moodle", backoff_seconds=0.01)

    def read(now: int) -> tuple[dict, list[str]]:
        start = len(moodle.calls)
        found = result_sync.find_changed_learners(settings, hook, engine, tmp_path, full=False, now=now)
        return found, [name for name, _ in moodle.calls[start:]]

    full, calls = read(1_796_000_100)
    assert full["full"] and full["active"] == 1 and "core_reportbuilder_set_filters" not in calls
    save_result_parts(engine, settings.key, [([], [])], synced_until=1_796_000_100 - 3600, full_sync_at=1_796_000_100)
    night, calls = read(1_796_000_200)
    assert not night["full"] and night["active"] == 1
    assert calls.count("core_user_get_users_by_field") == 1  # the token user's time zone only
    assert calls[-2:] == ["core_reportbuilder_set_filters", "core_reportbuilder_retrieve_report"]
