"""ESS offers in PSIber (SQLite and PostgreSQL): a course is announced the first time it is offered and never
again, an offer that ends keeps its row, and the database finds what changes, so a night holds no offer per
employee and course in the flow."""

from __future__ import annotations

import tracemalloc
from functools import partial

from sqlalchemy import text

from factories import integration
from psiber import ess_sync
from psiber.demo_company import seed_demo_company
from psiber.ess_db import refresh_offers
from psiber.ess_offers import Offer, WantedOffers, offer_outcomes
from psiber.psiber_db import create_schema, select_employees
from sync_common.run_files import read_json, write_frame, write_json

KEY = "driver_training"
EXCEL = Offer(9, "ESS-EXCEL", "Excel for Office Staff")
POPIA = Offer(10, "ESS-POPIA", "POPIA Awareness")
NUMBERS = {1: "E001", 2: "E002"}


def refresh(engine, offers: dict[int, list[Offer]]) -> list[tuple[str, str, str]]:
    """Refresh to these offers by employee id (each employee a group of their own); the outcomes told."""
    groups = [tuple(sorted(offer.moodle_course_id for offer in courses)) for courses in offers.values()]
    wanted = WantedOffers({o.moodle_course_id: o for courses in offers.values() for o in courses}, groups,
                          {employee: group for group, employee in enumerate(offers)})
    outcomes = refresh_offers(engine, KEY, wanted, partial(offer_outcomes, numbers=NUMBERS))
    return [(o.record, o.action, o.reason) for o in outcomes]


def rows(engine, query: str) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(query))]


def offers_held(engine) -> list[tuple]:
    return rows(engine, "SELECT employee_id, moodle_course_id, course_code, course_name, offered "
                        "FROM ess_offered_course ORDER BY employee_id, moodle_course_id")


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
    assert offers_held(engine) == [(1, 9, "ESS-EXCEL", "Excel for Office Staff", 1),
                                   (1, 10, "ESS-POPIA", "POPIA Awareness", 1),
                                   (2, 9, "ESS-EXCEL", "Excel for Office Staff", 1)]
    before = rows(engine, "SELECT * FROM ess_offered_course ORDER BY employee_id, moodle_course_id")

    assert refresh(engine, {1: [EXCEL, POPIA], 2: [EXCEL]}) == []
    assert rows(engine, "SELECT * FROM ess_offered_course ORDER BY employee_id, moodle_course_id") == before
    assert len(notifications(engine)) == 3

    assert refresh(engine, {1: [EXCEL, POPIA], 2: [EXCEL, POPIA]}) == [
        ("E002", "offered", "ESS-POPIA: offered in ESS, the employee notified")]
    assert [(n[0], n[1]) for n in notifications(engine)] == [
        (1, "new_course:10"), (1, "new_course:9"), (2, "new_course:10"), (2, "new_course:9")]


def test_a_course_hidden_and_shown_again_is_offered_again_without_a_second_notification(psiber):
    engine, _ = psiber
    create_schema(engine)
    refresh(engine, {1: [EXCEL]})
    assert refresh(engine, {1: []}) == [
        ("E001", "withdrawn", "ESS-EXCEL: no longer offered (course hidden or gone, outside the offer rules, or the "
                              "employee no longer active)")]
    assert offers_held(engine) == [(1, 9, "ESS-EXCEL", "Excel for Office Staff", 0)]
    assert refresh(engine, {1: [EXCEL]}) == [
        ("E001", "offered_again", "ESS-EXCEL: offered again (announced before, so not again)")]
    assert offers_held(engine) == [(1, 9, "ESS-EXCEL", "Excel for Office Staff", 1)]
    assert [n[1] for n in notifications(engine)] == ["new_course:9"]


def test_a_renamed_course_is_rewritten_silently_and_a_departed_employee_loses_the_offer(psiber):
    engine, _ = psiber
    create_schema(engine)
    refresh(engine, {1: [EXCEL], 7: [EXCEL]})
    renamed = Offer(9, "ESS-EXCEL", "Excel 365 for Office Staff")
    assert refresh(engine, {1: [renamed]}) == [("PSIber employee row 7", "withdrawn", "ESS-EXCEL: no longer offered "
                                                "(course hidden or gone, outside the offer rules, or the employee no "
                                                "longer active)")]
    assert offers_held(engine) == [(1, 9, "ESS-EXCEL", "Excel 365 for Office Staff", 1),
                                   (7, 9, "ESS-EXCEL", "Excel for Office Staff", 0)]
    assert len(notifications(engine)) == 2
    shown = refresh(engine, {1: [renamed], 7: [renamed]})  # the ended offer takes the new name when offered again
    assert shown == [("PSIber employee row 7", "offered_again",
                      "ESS-EXCEL: offered again (announced before, so not again)")]
    assert offers_held(engine)[1] == (7, 9, "ESS-EXCEL", "Excel 365 for Office Staff", 1)


def test_a_night_holds_no_offer_per_employee_and_course(psiber, tmp_path):
    """370 active employees offered 150 courses: 55,500 offers written on the first night, then a quiet night.
    Neither holds an object per offer in the flow (that took 72 MiB and 33 MiB here; the first night's report
    still names every course offered to each employee)."""
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
    assert first["offers"] == quiet["offers"] == first["employees"] * 150 > 50_000
    assert first["offered"] == first["employees"] and "offered" not in quiet
    assert read_json(tmp_path / "outcomes/ess.offer.json")["outcomes"] == []
    assert rows(engine, "SELECT COUNT(*), SUM(offered) FROM ess_offered_course") == [(first["offers"],) * 2]
    assert rows(engine, "SELECT COUNT(*) FROM ess_notification") == [(first["offers"],)]
    assert max(peaks) < 8 * 2**20


def test_a_night_compares_only_the_employees_whose_offers_change(psiber):
    """Each employee's offers are fingerprinted as written: a night compares the offers of the employees whose
    fingerprint changes (or who left) and no other, so a quiet night reads no offer."""
    engine, _ = psiber
    create_schema(engine)
    refresh(engine, {1: [EXCEL], 2: [EXCEL]})
    with engine.begin() as connection:  # not how the flow leaves it: shows which employees a night compares
        connection.execute(text("UPDATE ess_offered_course SET offered = 0"))
    assert refresh(engine, {1: [EXCEL], 2: [EXCEL]}) == []
    assert refresh(engine, {1: [EXCEL, POPIA], 2: [EXCEL]}) == [
        ("E001", "offered", "ESS-POPIA: offered in ESS, the employee notified"),
        ("E001", "offered_again", "ESS-EXCEL: offered again (announced before, so not again)")]
    assert offers_held(engine) == [(1, 9, "ESS-EXCEL", "Excel for Office Staff", 1),
                                   (1, 10, "ESS-POPIA", "POPIA Awareness", 1),
                                   (2, 9, "ESS-EXCEL", "Excel for Office Staff", 0)]
    assert rows(engine, "SELECT employee_id FROM ess_offer_fingerprint ORDER BY employee_id") == [(1,), (2,)]


def test_without_fingerprints_every_current_offer_is_compared(psiber):
    """Offers written before fingerprints were kept: the first refresh compares every current offer, so an
    employee who has left since loses the offer though no fingerprint names them."""
    engine, _ = psiber
    create_schema(engine)
    refresh(engine, {1: [EXCEL], 7: [EXCEL]})
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM ess_offer_fingerprint"))
    assert refresh(engine, {1: [EXCEL]}) == [
        ("PSIber employee row 7", "withdrawn", "ESS-EXCEL: no longer offered (course hidden or gone, outside the offer "
                                               "rules, or the employee no longer active)")]
    assert rows(engine, "SELECT employee_id FROM ess_offer_fingerprint") == [(1,)]
