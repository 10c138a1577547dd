from factories import integration
from psiber.config import CONFIG_OWNER
from psiber.field_discovery import (
    field_matches,
    read_course_fields,
    read_user_fields,
    render_field_report,
    unmatched_field_warnings,
)
from recorded_moodle import RecordedSite, answer

SETTINGS = integration(
    users={"profile_field_matches": [{"moodle_field": "gender", "psiber_element": "gender",
                                      "menu_options": ["Male", "Female"]}]},
    courses={"custom_field_matches": [{"moodle_field": "passrate", "psiber_element": "min_pass_rate"}]},
)
USER_FIELDS = [{"shortname": "gender", "name": "Gender", "type": "menu", "options": ["Male", "Female"]},
               {"shortname": "disability", "name": "disability", "type": "menu", "options": ["Yes", "No"]},
               {"shortname": "uifref", "name": "Payroll UIF Ref", "type": "text", "options": None}]
COURSES = [
    {"customfields": [{"shortname": "passrate", "name": "Pass Rate", "type": "text", "value": "70"},
                      {"shortname": "nqflevel", "name": "NQF level", "type": "select", "value": "NQF 4"}]},
    {"customfields": [{"shortname": "nqflevel", "name": "NQF level", "type": "select", "value": "NQF 2"}]},
]


def test_course_fields_are_gathered_from_courses_with_the_options_seen():
    assert read_course_fields(COURSES) == [
        {"shortname": "nqflevel", "name": "NQF level", "type": "select", "options": ["NQF 2", "NQF 4"]},
        {"shortname": "passrate", "name": "Pass Rate", "type": "text", "options": None}]


def test_matches_show_matched_and_unmatched_fields_and_warn_about_the_unmatched():
    matches = field_matches(USER_FIELDS, read_course_fields(COURSES), SETTINGS)
    assert [(f["shortname"], f["psiber_element"]) for f in matches["user_fields"]] == [
        ("gender", "gender"), ("disability", None), ("uifref", None)]
    assert [(f["shortname"], f["psiber_element"]) for f in matches["course_fields"]] == [
        ("nqflevel", None), ("passrate", "min_pass_rate")]
    warnings = unmatched_field_warnings(matches)
    assert [(w.record, w.flow) for w in warnings] == [
        ("user field disability", "fields"), ("user field uifref", "fields"), ("course field nqflevel", "fields")]
    assert {w.owner for w in warnings} == {CONFIG_OWNER}  # who matches a field in the integration file


def test_report_prints_a_ready_to_paste_block_for_the_unmatched_fields():
    report = render_field_report(field_matches(USER_FIELDS, read_course_fields(COURSES), SETTINGS), note="n/a")
    assert "  gender               menu      → gender options: Male, Female" in report
    assert "  uifref               text      → NOT MATCHED" in report
    assert 'users:\n  profile_field_matches:\n    - {moodle_field: disability, psiber_element: CHOOSE, ' \
           'menu_options: ["Yes", "No"]}\n    - {moodle_field: uifref, psiber_element: CHOOSE}' in report
    assert "courses:\n  custom_field_matches:\n    - {moodle_field: nqflevel, psiber_element: CHOOSE}" in report
    assert "Note: n/a" in report


def test_a_fully_matched_site_gets_no_paste_block():
    report = render_field_report(field_matches(USER_FIELDS[:1], [], SETTINGS))
    assert "CHOOSE" not in report and "(none found)" in report


def test_a_live_sites_number_field_is_listed_with_its_type():
    fields = {f["shortname"]: f for f in read_course_fields(answer("02-get-courses-all"))}
    assert fields["passrate"] == {"shortname": "passrate", "name": "Pass Rate", "type": "number", "options": None}
    assert fields["nqflevel"]["options"] == ["NQF 1", "NQF 2", "NQF 3", "NQF 4"]
    assert {name: f["type"] for name, f in fields.items()} == {
        "anothertest": "select", "nqflevel": "select", "passrate": "number", "saqaregistered": "checkbox",
        "testdates": "date", "testtextarea": "textarea", "unitstandardid": "text"}
    report = render_field_report(field_matches([], list(fields.values()), SETTINGS))
    assert "  passrate             number    → min_pass_rate" in report


def signup_settings(recording: str) -> RecordedSite:
    site = RecordedSite()
    site.answer(answer(recording), "auth_email_get_signup_settings")
    return site


def test_a_live_sites_user_profile_fields_with_their_menu_options():
    fields, note = read_user_fields(signup_settings("05-signup-settings"))
    assert note is None
    assert [(f["shortname"], f["type"], f["options"]) for f in fields] == [
        ("gender", "menu", ["Male", "Female", "Other"]), ("disability", "menu", ["Yes", "No"]),
        ("employmenttype", "menu", ["Permanent", "Contract", "Temporary"]),
        ("uifref", "text", None), ("sdlref", "text", None), ("employeenumber", "text", None)]  # param1 "30": a size


def test_signup_switched_off_leaves_a_note_not_a_failure():
    fields, note = read_user_fields(signup_settings("89-signup-disabled"))
    assert fields == []
    assert note.startswith("user profile fields cannot be listed (Registration is disabled on this site)")
