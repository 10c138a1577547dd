"""A targeted run's users plan (pure): only a listed employee who left the extract is suspended."""

from __future__ import annotations

from test_user_plan import employee, links, moodle_user, targets_of

from psiber.source import PSIBER
from psiber.user_plan import plan_user_changes


def test_only_a_listed_linked_employee_who_left_the_extract_is_suspended():
    linked = links((1, "E001", 7, "a"), (2, "E002", 8, "b"))
    users = [moodle_user(7, "a", "E001"), moodle_user(8, "b", "E002")]
    targets = targets_of(employee(3))
    whole = plan_user_changes(targets, users, linked, [3])
    targeted = plan_user_changes(targets, users, linked, [3], source=PSIBER.targeted(["e002", "E003"]))
    assert [update["employee_number"] for update in whole.updates] == ["E001", "E002"]
    assert [(update["employee_number"], update["action"]) for update in targeted.updates] == [("E002", "suspended")]
    assert [create["employee_number"] for create in targeted.creates] == ["E003"]


def test_a_whole_runs_source_syncs_everyone_and_a_targeted_ones_the_listed_in_any_letter_case():
    assert PSIBER.targeted([]) == PSIBER and PSIBER.syncs("E001") and PSIBER.syncs(None)
    targeted = PSIBER.targeted([" e001"])
    assert targeted.syncs("E001 ") and not targeted.syncs("E002") and not targeted.syncs(None)
