"""The nightly benchmark's live projection: a call's latency follows its size, as the live recordings show."""

from benchmarks.nightly_run import LATENCY, call_size, latency_model, live_ms


def test_a_course_grade_read_costs_by_its_learners_and_a_look_up_by_its_ids():
    assert live_ms("gradereport_user_get_grade_items", 1) == 36
    assert live_ms("gradereport_user_get_grade_items", 240) == 888
    assert 888 < live_ms("gradereport_user_get_grade_items", 270) < 1040
    assert live_ms("gradereport_user_get_grade_items", 600) == 1040 + 300 * (1040 - 888) / 60  # along the last slope
    assert live_ms("core_user_get_users_by_field", 200) == 2098
    assert live_ms("core_reportbuilder_retrieve_report", 5000) == 1620
    assert live_ms("an_unrecorded_function", 1) == 100


def test_a_call_is_sized_by_what_moodle_answered_for_reads_of_a_course_or_a_report_page():
    grades = {"usergrades": [{"userid": n} for n in range(234)], "warnings": []}
    page = {"data": {"headers": [], "rows": [{"columns": []}] * 1000, "totalrowcount": 12000}}
    assert call_size("gradereport_user_get_grade_items", {"courseid": 41}, grades) == 234
    assert call_size("core_reportbuilder_retrieve_report", {"reportid": 3, "page": 0, "perpage": 5000}, page) == 1000
    assert call_size("core_user_get_users_by_field", {"field": "id", "values": list(range(200))}, []) == 200
    assert call_size("core_webservice_get_site_info", {}, {}) == 1


def test_the_printed_model_names_each_function_and_its_source():
    model = "\n".join(latency_model())
    assert all(function in model for function in LATENCY)
    assert "moodle-lab-findings/06" in model and "moodle-contract-reportbuilder/README.md" in model
