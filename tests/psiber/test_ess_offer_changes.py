"""ESS offers in PSIber (SQLite and PostgreSQL): a course is announced the first time it is offered and never
again, an offer that ends is remembered, and offers are kept by group, so a night writes rows per employee and per
group's course, never per employee and course."""

from __future__ import annotations

import tracemalloc

from sqlalchemy import text

from factories import integration
from psiber import ess_sync
from psiber.demo_company import seed_demo_company
from psiber.ess_db import refresh_offers
from psiber.ess_offers import Offer, WantedOffers
from psiber.psiber_db import create_schema, select_employees
from sync_common.run_files import read_json, write_frame, write_json

KEY = "driver_training"
EXCEL = Offer(9, "ESS-EXCEL", "Excel for Office Staff")
POPIA = Offer(10, "ESS-POPIA", "POPIA Awareness")
NUMBERS = {1: "E001", 2: "E002"}
WITHDRAWN = "no longer offered (course hidden or gone, outside the offer rules, or the employee no longer active)"


def refresh(engine, offers: dict[int, list[Offer]]) -> list[tuple[str, str, str]]:
    """Refresh to these offers by employee id (each employee a group of their own); the outcomes told."""
    groups = [tuple(sorted(offer.moodle_course_id for offer in courses)) for courses in offers.values()]
    wanted = WantedOffers({o.moodle_course_id: o for courses in offers.values() for o in courses}, groups,
                          {employee: group for group, employee in enumerate(offers)})
    return [(o.record, o.action, o.reason) for o in refresh_offers(engine, KEY, wanted, NUMBERS)]


def rows(engine, query: str) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(query))]


def offers_shown(engine) -> list[tuple]:
    """What ESS reads: each employee's offers now."""
    return rows(engine, "SELECT employee_id, moodle_course_id, course_code, course_name FROM ess_current_offer "
                        "ORDER BY employee_id, moodle_course_id")


def notifications(engine) -> list[tuple]:
    return rows(engine, "SELECT employee_id, notification_key, kind, moodle_course_id, course_code, text "
                        "FROM ess_notification ORDER BY employee_id, notification_key")


def test_a_course_is_announced_the_first_time_it_is_offered_and_never_again(psiber):
    engine, _ = psiber
    create_schema(engine)
    assert refresh(engine, {1: [EXCEL, POPIA], 2: [EXCEL]}) == [
        ("E001", "offered", "ESS-EXCEL, ESS-POPIA: offered in ESS, the employee notified"),
        ("E002", "offered", "ESS-EXCEL: offered in ESS, the employee notified")]
    assert notifications(engine) == [
        (1, "new_course:10", "new_course", 10, "ESS-POPIA",
         "New course for you: POPIA Awareness (ESS-POPIA). You can ask to enrol in ESS."),
        (1, "new_course:9", "new_course", 9, "ESS-EXCEL",
         "New course for you: Excel for Office Staff (ESS-EXCEL). You can ask to enrol in ESS."),
        (2, "new_course:9", "new_course", 9, "ESS-EXCEL",
         "New course for you: Excel for Office Staff (ESS-EXCEL). You can ask to enrol in ESS.")]
    assert offers_shown(engine) == [(1, 9, "ESS-EXCEL", "Excel for Office Staff"),
                                    (1, 10, "ESS-POPIA", "POPIA Awareness"),
                                    (2, 9, "ESS-EXCEL", "Excel for Office Staff")]
    before = rows(engine, "SELECT * FROM ess_employee_offer ORDER BY employee_id")

    assert refresh(engine, {1: [EXCEL, POPIA], 2: [EXCEL]}) == []
    assert rows(engine, "SELECT * FROM ess_employee_offer ORDER BY employee_id") == before
    assert len(notifications(engine)) == 3

    assert refresh(engine, {1: [EXCEL, POPIA], 2: [EXCEL, POPIA]}) == [
        ("E002", "offered", "ESS-POPIA: offered in ESS, the employee notified")]
    assert [(n[0], n[1]) for n in notifications(engine)] == [
        (1, "new_course:10"), (1, "new_course:9"), (2, "new_course:10"), (2, "new_course:9")]


def test_a_course_hidden_and_shown_again_is_offered_again_without_a_second_notification(psiber):
    engine, _ = psiber
    create_schema(engine)
    refresh(engine, {1: [EXCEL]})
    assert refresh(engine, {1: []}) == [("E001", "withdrawn", f"ESS-EXCEL: {WITHDRAWN}")]
    assert offers_shown(engine) == []
    assert refresh(engine, {1: [EXCEL, POPIA]}) == [
        ("E001", "offered", "ESS-POPIA: offered in ESS, the employee notified"),
        ("E001", "offered_again", "ESS-EXCEL: offered again (announced before, so not again)")]
    assert offers_shown(engine) == [(1, 9, "ESS-EXCEL", "Excel for Office Staff"),
                                    (1, 10, "ESS-POPIA", "POPIA Awareness")]
    assert [n[1] for n in notifications(engine)] == ["new_course:10", "new_course:9"]


def test_a_renamed_course_is_rewritten_silently_and_a_departed_employee_loses_the_offer(psiber):
    engine, _ = psiber
    create_schema(engine)
    refresh(engine, {1: [EXCEL], 7: [EXCEL]})
    renamed = Offer(9, "ESS-EXCEL", "Excel 365 for Office Staff")
    assert refresh(engine, {1: [renamed]}) == [("PSIber employee row 7", "withdrawn", f"ESS-EXCEL: {WITHDRAWN}")]
    assert offers_shown(engine) == [(1, 9, "ESS-EXCEL", "Excel 365 for Office Staff")]
    assert len(notifications(engine)) == 2
    assert refresh(engine, {1: [renamed], 7: [renamed]}) == [
        ("PSIber employee row 7", "offered_again", "ESS-EXCEL: offered again (announced before, so not again)")]
    assert offers_shown(engine)[1] == (7, 9, "ESS-EXCEL", "Excel 365 for Office Staff")


def test_many_courses_offered_at_once_are_told_in_one_notification(psiber):
    """An employee's first offers of 12 courses: one notification with the number (not 12), and a report line
    naming ten codes and counting the rest. A course added later is told on its own."""
    engine, _ = psiber
    create_schema(engine)
    courses = [Offer(100 + n, f"C{n:02d}", f"Course {n}") for n in range(12)]
    assert refresh(engine, {1: courses}) == [
        ("E001", "offered", "C00, C01, C02, C03, C04, C05, C06, C07, C08, C09 and 2 more: offered in ESS, "
                            "the employee notified")]
    [(employee, key, kind, course_id, code, told)] = notifications(engine)
    assert (employee, kind, course_id, code) == (1, "courses_offered", 0, "")
    assert key.startswith("courses_offered:")
    assert told == "12 new courses are offered to you: see them in ESS, where you can ask to enrol."
    assert len(offers_shown(engine)) == 12
    refresh(engine, {1: [*courses, EXCEL]})
    assert [n[1] for n in notifications(engine)] == [key, "new_course:9"]


def test_offers_are_kept_by_group_so_a_night_writes_no_row_per_employee_and_course(psiber, tmp_path):
    """370 active employees offered 150 courses: 55,500 offers shown, from 150 group rows and a row per employee;
    each employee told once. Neither night holds an object per offer in the flow, and the quiet one writes nothing."""
    engine, _ = psiber
    seed_demo_company(engine, employees=400)
    write_frame(tmp_path / "employees.parquet", select_employees(engine, None))
    write_json(tmp_path / "moodle_categories.json", [{"id": 5, "name": "Staff Development", "path": "/5"}])
    write_json(tmp_path / "moodle_courses.json", [
        {"id": 100 + n, "shortname": f"C{n:03d}", "fullname": f"Course {n}", "categoryid": 5, "visible": 1,
         "format": "topics"} for n in range(150)])
    settings = integration(flows=["users", "courses", "ess"], ess={"offers": [{"categories": ["Staff Development"]}]})
    peaks, results = [], []
    for night in ("run-1", "run-2"):
        tracemalloc.start()
        try:
            results.append(ess_sync.refresh_ess_offers(settings, engine, tmp_path, night))
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    first, quiet = results
    employees = first["employees"]
    assert first["offers"] == quiet["offers"] == employees * 150 > 50_000
    assert first["offered"] == employees and "offered" not in quiet
    assert read_json(tmp_path / "outcomes/ess.offer.json")["outcomes"] == []
    assert rows(engine, "SELECT COUNT(*) FROM ess_current_offer") == [(employees * 150,)]
    assert rows(engine, "SELECT COUNT(*) FROM ess_offer_group") == [(150,)]
    assert rows(engine, "SELECT COUNT(*) FROM ess_offered_ever") == [(150,)]
    assert rows(engine, "SELECT COUNT(*) FROM ess_employee_offer") == [(employees,)]
    assert rows(engine, "SELECT kind, COUNT(*) FROM ess_notification GROUP BY kind") == [("courses_offered",
                                                                                          employees)]
    assert max(peaks) < 8 * 2**20


def test_only_the_employees_whose_group_changed_are_written_and_unheld_groups_go(psiber):
    engine, _ = psiber
    create_schema(engine)
    refresh(engine, {1: [EXCEL], 2: [EXCEL]})
    with engine.begin() as connection:  # not how the flow leaves it: shows which employees a night writes
        connection.execute(text("UPDATE ess_employee_offer SET updated_at = '2000-01-01 00:00:00'"))
    assert refresh(engine, {1: [EXCEL, POPIA], 2: [EXCEL]}) == [
        ("E001", "offered", "ESS-POPIA: offered in ESS, the employee notified")]
    assert rows(engine, "SELECT employee_id FROM ess_employee_offer WHERE updated_at > '2000-01-01 00:00:00'") == \
        [(1,)]
    assert rows(engine, "SELECT COUNT(DISTINCT offer_group), COUNT(*) FROM ess_offer_group") == [(2, 3)]
    refresh(engine, {1: [POPIA], 2: [POPIA]})
    assert rows(engine, "SELECT moodle_course_id FROM ess_offer_group") == [(10,)]
    # both have been offered {9, 10}: one set, and the sets {9} and {9, 10} of before are gone with their groups
    assert rows(engine, "SELECT COUNT(DISTINCT offered_ever) FROM ess_employee_offer") == [(1,)]
    assert rows(engine, "SELECT moodle_course_id FROM ess_offered_ever ORDER BY moodle_course_id") == [(9,), (10,)]


def test_the_tables_of_offers_kept_per_employee_and_course_are_replaced(psiber):
    engine, _ = psiber
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE ess_offered_course (employee_id INTEGER, moodle_course_id INTEGER)"))
        connection.execute(text("CREATE TABLE ess_offer_fingerprint (employee_id INTEGER, fingerprint VARCHAR(64))"))
    create_schema(engine)
    create_schema(engine)  # the view is made again, the tables stay
    refresh(engine, {1: [EXCEL]})
    assert offers_shown(engine) == [(1, 9, "ESS-EXCEL", "Excel for Office Staff")]
    with engine.connect() as connection:
        names = set(engine.dialect.get_table_names(connection))
    assert {"ess_offer_group", "ess_employee_offer", "ess_offered_ever"} <= names
    assert not names & {"ess_offered_course", "ess_offer_fingerprint"}
