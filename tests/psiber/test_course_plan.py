from factories import integration
from psiber.course_plan import course_code, plan_course_changes, psiber_courses_from_moodle
from recorded_moodle import answer

SETTINGS = integration(courses={"custom_field_matches": [
    {"moodle_field": "unitstandardid", "psiber_element": "saqa_id"},
    {"moodle_field": "saqaregistered", "psiber_element": "nqf_recognised"},
    {"moodle_field": "passrate", "psiber_element": "min_pass_rate"},
    {"moodle_field": "nqflevel", "psiber_element": "nqf_level"},
]})
PICKLISTS = {"nqf_level": {"NQF 2", "NQF 4"}, "course_category": {"Driver Training"}}
CATEGORIES = [{"id": 3, "name": "Driver Training"}, {"id": 4, "name": "Health and Safety"}]


def moodle_course(course_id, shortname, **fields):
    return {"id": course_id, "shortname": shortname, "fullname": f"{shortname} course", "idnumber": "",
            "categoryid": 3, "visible": 1, "startdate": 1767225600, "enddate": 0, "enablecompletion": 1,
            "format": "topics", "customfields": [], **fields}


def field(shortname, value, valueraw=None):
    return {"shortname": shortname, "value": value, "valueraw": value if valueraw is None else valueraw,
            "name": shortname, "type": "text"}


def test_course_code_is_the_id_number_else_the_short_name():
    assert course_code({"idnumber": " DRV-101 ", "shortname": "drv"}) == "DRV-101"
    assert course_code({"idnumber": "", "shortname": "drv"}) == "drv"


def test_course_fields_and_matched_custom_fields_map_to_psiber():
    course = moodle_course(5, "DRV", idnumber="DRV-101", visible=0, customfields=[
        field("unitstandardid", "<p>243</p>"), field("saqaregistered", "Yes", "1"), field("passrate", "75 %"),
        field("nqflevel", "NQF 4", "4")])
    [row], outcomes = psiber_courses_from_moodle([moodle_course(1, "site", format="site"), course], CATEGORIES,
                                                 SETTINGS, PICKLISTS)
    assert row == {"course_code": "DRV-101", "description": "DRV course", "category": "Driver Training",
                   "status": "Inactive", "start_date": "2026-01-01", "moodle_course_id": 5, "enddate": 0,
                   "saqa_id": "243", "nqf_recognised": 1, "min_pass_rate": 75.0, "nqf_level": "NQF 4",
                   "course_level": None}
    assert outcomes == []


def test_bad_custom_field_values_are_warnings_not_crashes():
    course = moodle_course(5, "DRV", customfields=[field("passrate", "seventy"), field("nqflevel", "NQF 9")])
    [row], outcomes = psiber_courses_from_moodle([course], CATEGORIES, SETTINGS, PICKLISTS)
    assert (row["min_pass_rate"], row["nqf_level"]) == (None, None)
    assert [(o.record, o.action, o.flow) for o in outcomes] == [("DRV", "warning", "courses")] * 2
    assert "'seventy' is not a number" in outcomes[0].reason
    assert "'NQF 9' is not a value of the PSIber picklist (values: NQF 2, NQF 4)" in outcomes[1].reason


def test_course_without_completion_is_kept_and_flagged_with_the_seed_warning():
    [row], [outcome] = psiber_courses_from_moodle([moodle_course(5, "DRV", enablecompletion=0)], CATEGORIES,
                                                  SETTINGS, PICKLISTS)
    assert row["course_code"] == "DRV"
    assert outcome.reason.startswith("Course completion criteria not defined")
    assert outcome.owner == "Moodle administrator"


def psiber_row(code, moodle_id, **fields):
    row = {"course_code": code, "description": f"{code} course", "category": "Driver Training", "status": "Active",
           "start_date": "2026-01-01", "saqa_id": None, "nqf_recognised": None, "min_pass_rate": None,
           "nqf_level": None, "course_level": None, "source": "moodle", "integration_name": "driver_training",
           "moodle_course_id": moodle_id}
    return {**row, **fields}


def wanted(*courses):
    rows, _ = psiber_courses_from_moodle(list(courses), CATEGORIES, SETTINGS, PICKLISTS)
    return rows


def test_new_changed_unchanged_and_new_category():
    plan = plan_course_changes(
        wanted(moodle_course(5, "A"), moodle_course(6, "B", fullname="Renamed"), moodle_course(7, "C", categoryid=4)),
        [psiber_row("A", 5), psiber_row("B", 6)], SETTINGS, {"Driver Training"}, {5, 6, 7})
    assert [(o.record, o.action, o.reason) for o in plan.outcomes] == [
        ("A", "unchanged", ""), ("B", "updated", "changed: description"), ("C", "created", "")]
    assert [row["course_code"] for row in plan.upserts] == ["B", "C"]
    assert plan.new_categories == ["Health and Safety"]


def test_course_gone_from_moodle_turns_inactive_never_deleted():
    plan = plan_course_changes(wanted(moodle_course(5, "A")), [psiber_row("A", 5), psiber_row("OLD", 9)],
                               SETTINGS, {"Driver Training"}, {5})
    [gone] = [row for row in plan.upserts if row["course_code"] == "OLD"]
    assert gone["status"] == "Inactive"
    assert ("OLD", "deactivated") in [(o.record, o.action) for o in plan.outcomes]


def test_hand_made_psiber_course_is_never_overwritten():
    plan = plan_course_changes(wanted(moodle_course(5, "A")), [psiber_row("A", None, source="psiber",
                                                                          integration_name=None)],
                               SETTINGS, {"Driver Training"}, {5})
    assert plan.upserts == []
    assert [(o.record, o.action) for o in plan.outcomes] == [("A", "conflict")]
    assert "made by hand in PSIber" in plan.outcomes[0].reason


def test_a_course_whose_code_changed_in_moodle_keeps_its_psiber_code():
    plan = plan_course_changes(wanted(moodle_course(5, "NEW", fullname="A course")), [psiber_row("A", 5)],
                               SETTINGS, {"Driver Training"}, {5})
    assert plan.upserts == []
    assert [(o.record, o.action) for o in plan.outcomes] == [("A", "warning"), ("A", "unchanged")]


def test_names_formatted_for_html_by_moodle_are_stored_as_plain_text():
    [row], _ = psiber_courses_from_moodle(
        [moodle_course(5, "HS", fullname="Fire &amp; <b>Safety</b>", categoryid=9,
                       customfields=[field("unitstandardid", "<p>A&amp;B</p>")])],
        [{"id": 9, "name": "Health &amp; Safety"}], SETTINGS, PICKLISTS)
    assert (row["description"], row["category"], row["saqa_id"]) == ("Fire & Safety", "Health & Safety", "A&B")


def test_a_recreated_course_takes_over_its_psiber_course_and_a_live_namesake_is_a_conflict():
    plan = plan_course_changes(wanted(moodle_course(9, "A")), [psiber_row("A", 5)], SETTINGS, {"Driver Training"},
                               {9})
    assert [(o.record, o.action, o.reason) for o in plan.outcomes] == [("A", "updated", "changed: moodle_course_id")]
    assert [(row["course_code"], row["moodle_course_id"], row["status"]) for row in plan.upserts] == [
        ("A", 9, "Active")]
    clash = plan_course_changes(wanted(moodle_course(9, "A")), [psiber_row("A", 5)], SETTINGS, {"Driver Training"},
                                {5, 9})
    assert clash.upserts == [] and [(o.record, o.action) for o in clash.outcomes] == [("A", "conflict")]


def test_pass_rates_outside_0_to_100_and_overlong_texts_are_warnings():
    course = moodle_course(5, "DRV", customfields=[field("passrate", "1000"), field("unitstandardid", "9" * 300)])
    [row], outcomes = psiber_courses_from_moodle([course], CATEGORIES, SETTINGS, PICKLISTS)
    assert (row["min_pass_rate"], row["saqa_id"]) == (None, None)
    assert [o.reason.split(": ", 1)[1] for o in outcomes] == [
        "the value is longer than PSIber's 255 characters; left empty",
        "1000 is not a percentage from 0 to 100; left empty"]


def test_start_dates_are_days_in_the_sites_time_zone():
    sast_midnight = 1772402400  # 2026-03-02 00:00 in Johannesburg, 2026-03-01 22:00 UTC
    course = moodle_course(5, "DRV", startdate=sast_midnight)
    [utc], _ = psiber_courses_from_moodle([course], CATEGORIES, SETTINGS, PICKLISTS)
    local = SETTINGS.model_copy(update={"timezone": "Africa/Johannesburg"})
    [sast], _ = psiber_courses_from_moodle([course], CATEGORIES, local, PICKLISTS)
    assert (utc["start_date"], sast["start_date"]) == ("2026-03-01", "2026-03-02")


LIVE_CATEGORIES = answer("03-get-categories-all")


def live_plan(moodle_courses: list[dict]):
    """Rows, mapping outcomes and plan of a live site's get_courses answer against an empty PSIber."""
    rows, outcomes = psiber_courses_from_moodle(moodle_courses, LIVE_CATEGORIES, SETTINGS, PICKLISTS)
    return rows, outcomes, plan_course_changes(rows, [], SETTINGS, {"Driver Training"},
                                               {int(course["id"]) for course in moodle_courses})


def test_courses_in_the_databases_order_make_the_same_plan_whatever_that_order():
    site_first = answer("02-get-courses-all")  # as Moodle answered: site course first, then neither by id nor name
    site_last = list(reversed(site_first))
    assert [c["id"] for c in site_first] == [1, 8, 6, 7, 5, 4, 2, 3]
    rows, outcomes, plan = live_plan(site_first)
    assert [row["course_code"] for row in rows] == [
        "DRV-101", "DRV-201", "DG-TRANSPORT", "HS-101", "HS-102", "ONB-1", "DRV-OLD"]  # by Moodle id
    assert live_plan(site_last) == (rows, outcomes, plan)
    assert [o.record for o in plan.outcomes if o.action == "created"] == [row["course_code"] for row in rows]
    assert plan.new_categories == ["Health and Safety", "Onboarding"]


def test_the_site_course_is_never_a_psiber_course_and_completion_off_is_a_warning():
    site, *courses = answer("02-get-courses-all")
    assert (site["format"], site["summaryformat"], site["showcompletionconditions"]) == ("site", 0, None)
    [onboarding] = [course for course in courses if course["shortname"] == "ONB-1"]
    assert (onboarding["enablecompletion"], onboarding["showcompletionconditions"]) == (0, None)
    rows, outcomes = psiber_courses_from_moodle([site, onboarding], LIVE_CATEGORIES, SETTINGS, PICKLISTS)
    assert [(row["course_code"], row["moodle_course_id"], row["category"]) for row in rows] == [
        ("ONB-1", 7, "Onboarding")]
    assert [(o.record, o.action, o.owner) for o in outcomes] == [("ONB-1", "warning", "Moodle administrator")]
    assert outcomes[0].reason.startswith("Course completion criteria not defined")


def number_field(valueraw, value):
    """A Pass Rate number field (customfield_number) as get_courses lists it."""
    return {"name": "Pass Rate", "shortname": "passrate", "type": "number", "valueraw": valueraw, "value": value}


def test_number_fields_give_the_min_pass_rate_from_their_raw_value():
    live = {row["course_code"]: row["min_pass_rate"] for row in live_plan(answer("02-get-courses-all"))[0]}
    assert (live["HS-102"], live["DRV-OLD"], live["ONB-1"]) == (70.0, 50.0, None)  # ONB-1: no pass mark set

    def rate(valueraw, value):
        course = moodle_course(5, "DRV", customfields=[number_field(valueraw, value)])
        [row], outcomes = psiber_courses_from_moodle([course], CATEGORIES, SETTINGS, PICKLISTS)
        return row["min_pass_rate"], [o.reason for o in outcomes]

    assert rate(72.5, "72,5 %") == (72.5, [])  # shown with the site language's decimal comma and a template
    assert rate(0, None) == (0.0, [])          # 0 shown as the (empty) "display when zero" text
    assert rate(None, None) == (None, [])
    assert rate(150, "150") == (None, ["custom field 'passrate' → min_pass_rate: 150 is not a percentage from "
                                       "0 to 100; left empty"])
