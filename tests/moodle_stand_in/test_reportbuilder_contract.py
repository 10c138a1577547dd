"""Replays the live Report Builder recordings (../shared/moodle-contract-reportbuilder) against the stand-in.

Their ``setup`` is prose about a 2,000-user, 40-course site; contract/reportbuilder_setup.json is that site as far
as the recordings show it (every recorded row's user, enrolment, grade, completion and last access, the five
reports, the site's time zone, the recording's clock), plus what a recording's description says was different.
The request goes over HTTP as test_moodle_contract.replay sends it. What is compared:

* error answers, set_filters / filters_reset / view_report answers: exactly; the per-user calls on the report's
  first enrolment (40-42, whose course dates and enrolment counts the set-up does not hold) by shape, as
  test_moodle_contract compares live answers;
* list_reports and every answer's ``details``: keys and types everywhere, values exactly except the volatile ones
  (ids, times, image URLs; the site's address is the recordings' ``http://moodle.example``);
* ``data.headers``: exactly;
* ``data.rows``: exactly, as display strings. A complete page (no "BODY CUT" in the description) must be the
  stand-in's page; a cut first page (page 0, first rows kept) must be the start of the stand-in's page; a cut later
  page (page 119) must be a run of consecutive rows of the stand-in's whole report, in order. Filters a recording's
  setup says were set before (``filters_set_before``) are set for the token user first, so 22-28 prove the
  filters apply, AND with conditions and cannot widen them;
* ``data.totalrowcount``: its type, and that it counts the rows the stand-in's report selects (the site holds only
  the recorded rows, not 12,000 enrolments, so the recorded counts cannot be reproduced).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moodle_provider.form_encoding import flatten_params
from moodle_stand_in import MoodleStandIn
from moodle_stand_in.reportbuilder import add_report, report_state, retrieve_report, set_filters
from tests.moodle_stand_in.test_moodle_contract import (
    REPO_ROOT,
    TOKEN,
    _shared_params,
    build_site,
    compare,
    post,
    resolve,
)

REPORTBUILDER_DIR = REPO_ROOT.parent / "shared" / "moodle-contract-reportbuilder"
REPORTBUILDER_SETUP = Path(__file__).resolve().parent / "contract" / "reportbuilder_setup.json"
RECORDED_SITE = "http://moodle.example"


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def build_report_site(setup: dict) -> MoodleStandIn:
    """build_site's users, courses, enrolments, grades, completions and access, then the Report Builder part."""
    site, refs = build_site(setup)
    state = report_state(site)
    state.timezone = setup.get("site_timezone", "UTC")
    state.clock = setup.get("clock")
    state.can_view = setup.get("reportbuilder_view", True)
    for report in setup.get("reports", []):
        report = dict(report)
        add_report(site, report.pop("name"), report.pop("source"), report.pop("columns"), **report)
    if "token_user_timezone" in setup:
        site.users[site.token_user_id]["timezone"] = setup["token_user_timezone"]
    return site


def with_additions(baseline: dict, extra: dict) -> dict:
    """The baseline with a recording's additions: list items appended (one more learner), new keys added; a value
    the baseline already has is never changed."""
    merged = dict(baseline)
    for key, value in extra.items():
        if isinstance(value, list):
            merged[key] = baseline.get(key, []) + value
        else:
            assert key not in baseline, f"the supplement would change {key}"
            merged[key] = value
    return merged


def recording_setup(name: str, recording: dict) -> dict:
    document = _load(REPORTBUILDER_SETUP)
    supplement = document["recordings"].get(name, {})
    if supplement:
        assert supplement["description_says"] in recording["description"], name
    return with_additions(document["baseline"], supplement.get("setup", {}))


def as_recorded(value, site: MoodleStandIn):
    """The answer with the stand-in's address replaced by the recorded site's."""
    return json.loads(json.dumps(value).replace(site.base_url, RECORDED_SITE))


def rows_problems(recording: dict, actual: dict, site: MoodleStandIn) -> list[str]:
    expected_rows = recording["response"]["body"]["data"]["rows"]
    params = recording["request"]["params"]
    got = actual["data"]["rows"]
    if "BODY CUT" not in recording["description"]:
        return [] if got == expected_rows else [f"rows differ:\nexpected {expected_rows}\ngot      {got}"]
    if params.get("page", 0) <= 0:
        start = got[:len(expected_rows)]
        return [] if start == expected_rows else [f"first rows differ:\nexpected {expected_rows}\ngot      {start}"]
    whole = as_recorded(retrieve_report(site, params["reportid"], 0, 0), site)["data"]["rows"]
    runs = [whole[i:i + len(expected_rows)] for i in range(len(whole) - len(expected_rows) + 1)]
    return [] if expected_rows in runs else [f"the rows {expected_rows} are not consecutive rows of the report"]


def replay_report_recording(path: Path) -> None:
    recording = _load(path)
    site = build_report_site(recording_setup(path.name, recording))
    request = recording["request"]
    before = (recording.get("setup") or {}).get("filters_set_before")
    if before is not None:
        set_filters(site, request["params"]["reportid"], "", json.dumps(before))
    pairs = [("wstoken", TOKEN), ("wsfunction", request["wsfunction"]), ("moodlewsrestformat", "json")] + \
        flatten_params(resolve(request.get("params", {}), {}))
    with site:
        status, text = post(site.base_url, pairs)
        actual = as_recorded(json.loads(text), site)
    expected = recording["response"]["body"]
    assert status == recording["response"]["status"], text[:300]
    if not (isinstance(expected, dict) and "data" in expected):
        # 40-42, the per-user calls on the report's first enrolment, as test_moodle_contract compares live answers
        problems = compare(expected, actual, exact=request["wsfunction"].startswith("core_reportbuilder_"))
        assert not problems, "\n".join(problems)
        return
    problems = compare(expected["details"], actual["details"], exact=True, path="details")
    problems += compare(expected["warnings"], actual["warnings"], exact=True, path="warnings")
    if expected["data"]["headers"] != actual["data"]["headers"]:
        problems.append(f"headers: expected {expected['data']['headers']}, got {actual['data']['headers']}")
    problems += rows_problems(recording, actual, site)
    whole = retrieve_report(site, request["params"]["reportid"], 0, 0)["data"]["rows"]
    if actual["data"]["totalrowcount"] != len(whole) or not isinstance(actual["data"]["totalrowcount"], int):
        problems.append(f"totalrowcount {actual['data']['totalrowcount']!r}, the report selects {len(whole)} rows")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", _shared_params(REPORTBUILDER_DIR))
def test_reportbuilder_recording(path: Path) -> None:
    replay_report_recording(path)


def test_supplements_name_report_builder_recordings() -> None:
    for name, supplement in _load(REPORTBUILDER_SETUP)["recordings"].items():
        assert supplement["description_says"] and supplement["setup"], name
        if REPORTBUILDER_DIR.is_dir():
            assert supplement["description_says"] in _load(REPORTBUILDER_DIR / name)["description"], name


def test_the_row_comparison_catches_a_changed_or_moved_row() -> None:
    """The comparison itself: a whole page must be equal, a cut first page the start of the stand-in's page, a cut
    later page a run of consecutive rows of the whole report."""
    site = build_report_site({"reports": [{"name": "Users", "source": "users", "columns": ["user:username"],
                                           "sorting": ["user:username"]}]})
    site.add_user(username="zoe", firstname="Zoe", lastname="Z")
    answer = as_recorded(retrieve_report(site, 1, 0, 10), site)

    def recording(rows, description="", page=0):
        return {"description": description, "request": {"params": {"reportid": 1, "page": page}},
                "response": {"body": {"data": {"rows": [{"columns": [r]} for r in rows]}}}}

    assert rows_problems(recording(["admin", "zoe"]), answer, site) == []
    assert rows_problems(recording(["admin"]), answer, site)  # a whole page with a row missing
    assert rows_problems(recording(["admin"], "BODY CUT"), answer, site) == []
    assert rows_problems(recording(["zoe"], "BODY CUT"), answer, site)  # not the page's start
    assert rows_problems(recording(["admin", "zoe"], "BODY CUT", page=3), answer, site) == []
    assert rows_problems(recording(["zoe", "admin"], "BODY CUT", page=3), answer, site)  # out of order
