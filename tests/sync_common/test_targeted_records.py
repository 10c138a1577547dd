"""The trigger parameter of a targeted run: which keys it reads, which values stop the run, what it reports."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowSkipException, ParamValidationError

from sync_common.targeted_records import (
    PARAM,
    TargetedRecordsError,
    as_triggered,
    not_found,
    skip_in_targeted_run,
    targeted_param,
    targeted_records,
)


@pytest.mark.parametrize("given, keys", [
    (None, ()), ([], ()), ([""], ()),
    (["EE00013"], ("EE00013",)),
    ([" EE00013 ", "EE00014"], ("EE00013", "EE00014")),
    (["EE00013, EE00014;EE00015"], ("EE00013", "EE00014", "EE00015")),  # pasted on one line
    (["EE00013\nEE00014"], ("EE00013", "EE00014")),
    (["EE00013", "ee00013"], ("EE00013",)),  # once, in any letter case
    ("S-2001", ("S-2001",)),  # a single key given as text through the CLI
], ids=["none", "empty", "blank line", "one", "trimmed", "one line", "lines in one", "twice", "text"])
def test_the_keys_are_read_trimmed_each_once_in_the_order_given(given, keys):
    assert targeted_records({PARAM: given}) == keys


@pytest.mark.parametrize("given, named", [
    ([13], "13 is not a record key"),
    (["EE00013", "EE0001'--"], "'EE0001'--' is not a record key"),
    (["E" * 101], "at most 100 characters"),
    ({"EE00013": True}, "must list record keys"),
], ids=["number", "punctuation", "too long", "mapping"])
def test_a_malformed_value_stops_the_run_naming_the_value_and_who_gave_it(given, named):
    with pytest.raises(TargetedRecordsError, match="whoever triggered the run") as error:
        targeted_records({PARAM: given})
    assert named in str(error.value)


def test_the_summary_keeps_malformed_keys_as_given():
    assert as_triggered({PARAM: ["EE00013", "EE0001'--"]}) == ["EE00013", "EE0001'--"]
    assert as_triggered({PARAM: ["ee00013, EE00014"]}) == ["ee00013", "EE00014"]
    assert as_triggered({}) == []


def test_a_listed_key_the_source_lacks_is_a_warning_for_its_owner():
    [outcome] = not_found(["ee00013", "EE99999"], ["EE00013 "], "the register", "the registrar", "users")
    assert (outcome.record, outcome.action, outcome.owner, outcome.flow) == ("EE99999", "warning", "the registrar",
                                                                            "users")
    assert "the register has no record with this key" in outcome.reason


def test_a_whole_run_runs_every_task_and_a_targeted_run_skips_those_for_whole_runs_only():
    skip_in_targeted_run({PARAM: []}, "waits")
    with pytest.raises(AirflowSkipException, match=r"a targeted run \(EE00013\) waits"):
        skip_in_targeted_run({PARAM: ["EE00013"]}, "waits")


def test_a_targeted_run_of_an_integration_that_syncs_no_such_records_stops_saying_so():
    skip_in_targeted_run({PARAM: []}, "waits", syncs_listed=False)
    with pytest.raises(TargetedRecordsError, match="has no flow that syncs such records: trigger it without "
                                                   "sync_only"):
        skip_in_targeted_run({PARAM: ["EE00013"]}, "waits", syncs_listed=False)


def test_the_trigger_form_shows_a_list_of_text_empty_by_default_and_takes_it_emptied():
    param = targeted_param("employee numbers")
    assert param.value == [] and param.schema["items"] == {"type": "string"}
    assert "employee numbers" in param.description
    assert param.resolve(None) is None and param.resolve(["EE00013"]) == ["EE00013"]
    with pytest.raises(ParamValidationError):
        param.resolve([13])
