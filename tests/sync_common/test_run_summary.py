"""The run summary counts whatever actions flows report, and tells failed tasks from those they stopped."""

from __future__ import annotations

import logging

from factories import GOOD, write
from psiber.config import load_integration
from sync_common.moodle_calls import counted, moodle_calls_of_run, record_moodle_calls
from sync_common.outcomes import Outcome
from sync_common.run_files import write_json
from sync_common.run_summary import build_run_summary, count_actions, small_summary, write_run_summary
from sync_common.step_outputs import step_file, write_outcomes


def outcome(record, action, flow="users", reason="", owner=""):
    return {"record": record, "action": action, "reason": reason, "owner": owner, "flow": flow}


USUAL = {"users": ("created", "updated", "conflict"), "courses": ("created", "updated")}


def test_counts_keep_the_usual_actions_and_add_any_new_one_in_display_order():
    counts = count_actions(["users", "courses"], [outcome("EE1", "adopted"), outcome("EE2", "quarantined"),
                                                  outcome("EE3", "created"), outcome("EE4", "brand_new"),
                                                  outcome("X", "archived", flow="catalogue")], USUAL)
    assert list(counts) == ["users", "courses", "catalogue"]
    users = counts["users"]
    assert users["adopted"] == 1 and users["quarantined"] == 1 and users["brand_new"] == 1 and users["updated"] == 0
    actions = list(users)
    assert actions.index("created") < actions.index("adopted") < actions.index("updated")
    assert actions.index("conflict") < actions.index("quarantined") < actions.index("brand_new")  # unknown: last
    assert counts["courses"]["created"] == 0 and counts["catalogue"] == {"archived": 1}


class Catalogue:
    """An integration of a kind the summary has never heard of."""

    name = "Catalogue"
    reported_flows = ("catalogue",)


def test_the_summary_reads_what_the_steps_left_in_the_outcomes_folder_and_no_other_file(tmp_path):
    write_outcomes(tmp_path / step_file("catalogue.read"), [], {"catalogue": {"listed": 3, "archived": 9}})
    write_outcomes(tmp_path / step_file("catalogue.plan"), [Outcome("X1", "archived", flow="catalogue"),
                                                            Outcome("X2", "failed", "refused", flow="catalogue")],
                   writes=["X1"])
    write_json(tmp_path / "plan.json", {"outcomes": [outcome("X3", "archived", flow="catalogue")]})  # not a step's
    summary = build_run_summary(Catalogue(), "run-1", tmp_path, [], counted_actions={"catalogue": ("created",)})
    assert [o["record"] for o in summary["outcomes"]] == ["X1", "X2"]
    # Counts a step gives (records listed) stand beside those of its outcomes, and take precedence over them.
    assert summary["counts"] == {"catalogue": {"created": 0, "archived": 9, "failed": 1, "listed": 3}}


class FakeHook:
    def __init__(self, calls):
        self.calls_made = calls


def test_the_summary_names_failed_tasks_apart_from_those_they_stopped_and_adds_up_moodle_calls(tmp_path, caplog):
    integration = load_integration(write(tmp_path, "a.yaml", GOOD))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_json(run_dir / "outcomes/users.apply.json", {"created_links": [], "outcomes": [
        outcome("EE1", "failed", reason="Moodle refused it", owner="Moodle administrator"),
        outcome("EE2", "created")]})
    counted(FakeHook(5)), counted(FakeHook(2))
    assert record_moodle_calls(run_dir, "apply_user_changes", -1, 1) == 7
    counted(FakeHook(3))
    record_moodle_calls(run_dir, "read_completions", 0, 2)
    assert record_moodle_calls(run_dir, "plan_user_changes", -1, 1) == 0  # no hook made since: nothing counted
    tasks = [{"task_id": "apply_user_changes", "map_index": -1, "state": "failed", "duration": 1.0},
             {"task_id": "record_user_links", "map_index": -1, "state": "upstream_failed", "duration": None},
             {"task_id": "read_completions", "map_index": 0, "state": "success", "duration": 0.5}]
    summary = build_run_summary(integration, "manual__1", run_dir, tasks)
    assert summary["moodle_calls"] == moodle_calls_of_run(run_dir) == 10
    assert summary["failed_tasks"] == ["apply_user_changes"] and summary["state"] == "failed"
    [failure] = summary["failures"]  # its failure callback left no word: the task was killed
    assert (failure["task"], failure["error"], failure["owner"]) == (
        "apply_user_changes", "Failed", "the integration's maintainer")
    assert summary["unfinished_tasks"] == ["apply_user_changes", "record_user_links"]
    assert summary["counts"]["users"]["failed"] == 1 and not summary["complete"]
    with caplog.at_level(logging.INFO, logger="sync_common.run_summary"):
        path = write_run_summary(summary, run_dir)
    lines = caplog.messages
    assert "Tasks that failed: apply_user_changes" in lines
    assert "Tasks that did not run because a task before them failed: record_user_links" in lines
    assert "users: EE1: failed — Moodle refused it (owner: Moodle administrator)" in lines
    assert small_summary(summary, path)["problems"] == ["EE1: failed: Moodle refused it (owner: Moodle administrator)"]
