import pandas as pd
import pytest

from factories import employee, employees, integration
from psiber.user_plan import SuspendGuardTripped, check_suspend_guard, fingerprint, look_ups_needed, plan_user_changes
from psiber.user_transform import build_target_users

NO_LINKS = pd.DataFrame(columns=["employee_id", "employee_number", "moodle_user_id", "moodle_username"])


def targets_of(*rows):
    targets, _ = build_target_users(employees(*rows), integration(users={"profile_field_matches": [
        {"moodle_field": "gender", "psiber_element": "gender"}]}))
    return targets


def moodle_user(user_id, username, idnumber="", suspended=False, **fields):
    return {"id": user_id, "username": username, "email": fields.pop("email", username), "firstname": "Thabo",
            "lastname": "Mokoena", "idnumber": idnumber, "suspended": suspended,
            "customfields": [{"type": "menu", "shortname": "gender", "value": "Male", "displayvalue": "Male",
                              "name": "Gender"}], **fields}


def links(*rows):
    return pd.DataFrame(rows, columns=["employee_id", "employee_number", "moodle_user_id", "moodle_username"])


def test_new_active_employee_is_created_with_its_fields():
    plan = plan_user_changes(targets_of(employee(1)), [], NO_LINKS, [1])
    assert plan.creates == [{"employee_id": 1, "employee_number": "E001", "username": "thabo1@example.com",
                             "email": "thabo1@example.com", "firstname": "Thabo", "lastname": "Mokoena",
                             "idnumber": "E001", "customfields": [{"type": "gender", "value": "Male"}]}]
    assert plan.updates == [] and plan.outcomes == []


def test_terminated_employee_without_moodle_user_is_skipped_not_created():
    plan = plan_user_changes(targets_of(employee(1, employment_status="Terminated")), [], NO_LINKS, [1])
    assert plan.creates == []
    assert [(o.action, o.reason) for o in plan.outcomes] == [("skipped", "not active and has no Moodle account")]


def test_identical_user_matched_by_idnumber_is_unchanged_and_linked():
    plan = plan_user_changes(targets_of(employee(1)), [moodle_user(7, "thabo1@example.com", "E001")], NO_LINKS, [1])
    assert plan.updates == [] and plan.creates == []
    assert [o.action for o in plan.outcomes] == ["unchanged"]
    assert plan.links == [(1, 7, "thabo1@example.com")]


def test_only_changed_fields_are_updated():
    user = moodle_user(7, "thabo1@example.com", "E001")
    plan = plan_user_changes(targets_of(employee(1, surname="Dlamini", gender="Female")), [user], NO_LINKS, [1])
    assert plan.updates == [{"employee_id": 1, "employee_number": "E001", "action": "updated", "id": 7,
                             "changed": ["customfields", "lastname"], "lastname": "Dlamini",
                             "customfields": [{"type": "gender", "value": "Female"}]}]


def test_email_case_difference_alone_is_not_a_change():
    user = moodle_user(7, "thabo1@example.com", "E001", email="Thabo1@Example.com")
    plan = plan_user_changes(targets_of(employee(1)), [user], NO_LINKS, [1])
    assert [o.action for o in plan.outcomes] == ["unchanged"]


def test_terminated_employee_is_suspended_and_rehired_one_unsuspended():
    users = [moodle_user(7, "thabo1@example.com", "E001"), moodle_user(8, "thabo2@example.com", "E002", True)]
    plan = plan_user_changes(
        targets_of(employee(1, employment_status="Terminated"), employee(2)), users, NO_LINKS, [1, 2])
    assert [(u["id"], u["action"], u["suspended"]) for u in plan.updates] == [(7, "suspended", 1),
                                                                              (8, "unsuspended", 0)]


def test_link_wins_over_idnumber_and_restores_a_changed_idnumber():
    users = [moodle_user(7, "thabo1@example.com", "WRONG")]
    plan = plan_user_changes(targets_of(employee(1)), users, links((1, "E001", 7, "thabo1@example.com")), [1])
    assert [(u["id"], u["changed"]) for u in plan.updates] == [(7, ["idnumber"])]


def test_email_owned_by_another_moodle_user_is_a_conflict_never_a_second_user():
    users = [moodle_user(9, "someone", "X9", email="thabo1@example.com")]
    plan = plan_user_changes(targets_of(employee(1)), users, NO_LINKS, [1])
    assert plan.creates == [] and plan.updates == []
    [outcome] = plan.outcomes
    assert outcome.action == "conflict" and "Moodle user #9" in outcome.reason
    assert "set its ID number to 'E001'" in outcome.reason


def test_changed_email_taken_by_another_user_is_left_unchanged_but_other_changes_go():
    users = [moodle_user(7, "old@example.com", "E001"), moodle_user(9, "thabo1@example.com", "X9")]
    plan = plan_user_changes(targets_of(employee(1, first_name="Thabang")), users,
                             links((1, "E001", 7, "old@example.com")), [1])
    [update] = plan.updates
    assert (update["id"], update["changed"], update["action"]) == (7, ["firstname"], "conflict")
    assert "new email is already used by Moodle user #9" in update["reason"]
    assert plan.outcomes == []  # the update's own outcome is the record's one outcome


def test_two_accounts_with_the_employees_id_number_and_no_link_are_a_conflict_and_nothing_is_written():
    users = [moodle_user(7, "thabo1@example.com", "E001"), moodle_user(8, "other@example.com", " e001 ")]
    plan = plan_user_changes(targets_of(employee(1, first_name="Thabang")), users, NO_LINKS, [1])
    assert plan.creates == [] and plan.updates == [] and plan.links == []
    [outcome] = plan.outcomes
    assert outcome.action == "conflict" and "#7 and #8" in outcome.reason and "nothing was written" in outcome.reason


def test_id_number_on_one_account_and_email_on_another_is_a_conflict_naming_both():
    users = [moodle_user(7, "old@example.com", "E001"), moodle_user(9, "thabo1@example.com", "X9")]
    plan = plan_user_changes(targets_of(employee(1, first_name="Thabang")), users, NO_LINKS, [1])
    assert plan.creates == [] and plan.updates == [] and plan.links == []
    [outcome] = plan.outcomes
    assert outcome.action == "conflict" and "#7" in outcome.reason and "#9" in outcome.reason


def test_a_refused_record_is_quarantined_until_what_would_be_sent_changes():
    plan = plan_user_changes(targets_of(employee(1)), [], NO_LINKS, [1])
    refusal = {"fingerprint": fingerprint(plan.creates[0]), "reason": "Moodle refused it", "owner": "PSIber HR",
               "refused_at": "2026-11-20 01:00:00"}
    again = plan_user_changes(targets_of(employee(1)), [], NO_LINKS, [1], refusals={1: refusal})
    assert again.creates == []
    assert [(o.record, o.action, o.owner) for o in again.outcomes] == [("E001", "quarantined", "PSIber HR")]
    assert "2026-11-20" in again.outcomes[0].reason
    changed = plan_user_changes(targets_of(employee(1, surname="Dlamini")), [], NO_LINKS, [1], refusals={1: refusal})
    assert [c["lastname"] for c in changed.creates] == ["Dlamini"] and changed.outcomes == []


def test_a_linked_employee_deleted_from_psiber_is_suspended_or_kept_by_policy():
    users = [moodle_user(8, "gone@example.com", "E002")]
    deleted = pd.DataFrame([(2, None, 0, 8, "gone@example.com")],
                           columns=["employee_id", "employee_number", "employee_exists", "moodle_user_id",
                                    "moodle_username"])
    plan = plan_user_changes(targets_of(), users, deleted, [])
    assert [(u["id"], u["action"], u["employee_number"], u["reason"]) for u in plan.updates] == [
        (8, "suspended", "PSIber employee row #2 (deleted)", "employee record was deleted from PSIber")]
    assert plan.active_matched == 1
    kept = plan_user_changes(targets_of(), users, deleted, [], departed="keep")
    assert kept.updates == [] and [o.action for o in kept.outcomes] == ["skipped"]


def test_linked_employee_missing_from_extract_is_suspended():
    users = [moodle_user(7, "thabo1@example.com", "E001"), moodle_user(8, "gone@example.com", "E002")]
    plan = plan_user_changes(targets_of(employee(1)), users,
                             links((1, "E001", 7, "thabo1@example.com"), (2, "E002", 8, "gone@example.com")), [1])
    assert [(u["id"], u["action"], u["employee_number"]) for u in plan.updates] == [(8, "suspended", "E002")]
    assert plan.active_matched == 2


def test_linked_employee_still_extracted_but_invalid_is_not_suspended():
    users = [moodle_user(8, "gone@example.com", "E002")]
    plan = plan_user_changes(targets_of(), users, links((2, "E002", 8, "gone@example.com")), [2])
    assert plan.updates == []


def test_suspend_guard_trips_above_the_share_and_names_the_way_out():
    users = [moodle_user(i, f"u{i}@example.com", f"E{i:03d}") for i in range(1, 21)]
    rows = [employee(i, email=f"u{i}@example.com", employment_status="Terminated" if i <= 5 else "Active")
            for i in range(1, 21)]
    plan = plan_user_changes(targets_of(*rows), users, NO_LINKS, range(1, 21))
    assert plan.suspensions == 5 and plan.active_matched == 20
    with pytest.raises(SuspendGuardTripped, match="suspend 5 of 20 active Moodle users .25%.*allow_mass_suspension"):
        check_suspend_guard(plan, max_share=0.2, min_users=10)
    check_suspend_guard(plan, max_share=0.25, min_users=10)
    check_suspend_guard(plan, max_share=0.2, min_users=21)


def test_with_emailed_passwords_an_employee_without_email_is_not_created():
    targets = targets_of(employee(1, email=None), employee(2))
    plan = plan_user_changes(targets, [], NO_LINKS, [1, 2], passwords_by_email=True)
    assert [c["employee_number"] for c in plan.creates] == ["E002"]
    assert [(o.record, o.action) for o in plan.outcomes] == [("E001", "skipped")]
    assert "initial_password policy" in plan.outcomes[0].reason
    assert [c["employee_number"] for c in plan_user_changes(targets, [], NO_LINKS, [1, 2]).creates] == \
        ["E001", "E002"]


def test_a_transferred_employee_keeps_the_account_the_new_record_matched():
    users = [moodle_user(70, "thabo1@example.com", "E001")]
    plan = plan_user_changes(targets_of(employee(11, employee_number="E001", email="thabo1@example.com")), users,
                             links((10, "E001", 70, "thabo1@example.com")), [11])
    assert plan.updates == []
    assert plan.links == [(11, 70, "thabo1@example.com")]
    assert [(o.record, o.action) for o in plan.outcomes] == [("E001", "unchanged")]


def found_by(users: list[dict], wanted: dict[str, list]) -> list[dict]:
    """What Moodle's get_users_by_field answers: the users whose field is one of the values, exactly."""
    return [user for user in users if any(user.get(field) in values for field, values in wanted.items())]


LOOK_UP_CASES = {
    "quiet night": ([employee(1), employee(2)], [(1, 7), (2, 8)],
                    [moodle_user(7, "thabo1@example.com", "E001"), moodle_user(8, "thabo2@example.com", "E002"),
                     moodle_user(9, "copy", "E001", email="thabo1@example.com")]),
    "changed e-mail another account holds": ([employee(1, email="new@example.com")], [(1, 7)],
                                             [moodle_user(7, "thabo1@example.com", "E001"),
                                              moodle_user(9, "other", "X9", email="new@example.com")]),
    "changed username free": ([employee(1, email="new@example.com")], [(1, 7)],
                              [moodle_user(7, "thabo1@example.com", "E001")]),
    "link to a deleted account": ([employee(1)], [(1, 70)], [moodle_user(7, "thabo1@example.com", "E001")]),
    "two accounts with the ID number": ([employee(1)], [],
                                        [moodle_user(7, "thabo1@example.com", "E001"), moodle_user(8, "x", "E001")]),
    "ID number and e-mail on two accounts": ([employee(1), employee(2)], [(2, 8)],
                                             [moodle_user(7, "old", "E001"), moodle_user(9, "thabo1@example.com", "X9"),
                                              moodle_user(8, "thabo2@example.com", "E002")]),
    "e-mail in another letter case": ([employee(1, email="Thabo1@Example.com")], [],
                                      [moodle_user(9, "tm", "", email="Thabo1@Example.com")]),
    "a leaver": ([employee(1)], [(1, 7), (2, 8)],
                 [moodle_user(7, "thabo1@example.com", "E001"), moodle_user(8, "thabo2@example.com", "E002")]),
}


@pytest.mark.parametrize("case", LOOK_UP_CASES)
def test_the_look_ups_the_plan_needs_give_the_plan_every_look_up_gives(case):
    rows, linked_pairs, users = LOOK_UP_CASES[case]
    targets = targets_of(*rows)
    link_rows = links(*[(employee_id, f"E{employee_id:03d}", user_id, "") for employee_id, user_id in linked_pairs])
    extracted = [row["employee_id"] for row in rows]
    every = found_by(users, {"id": [user_id for _, user_id in linked_pairs],
                             "idnumber": list(targets["idnumber"]), "username": list(targets["username"]),
                             "email": list(targets["email"]) + list(targets["email_as_given"])})
    linked = {user["id"]: user for user in found_by(users, {"id": [user_id for _, user_id in linked_pairs]})}
    needed = look_ups_needed(targets.to_dict("records"), link_rows, linked)
    found = {user["id"]: user for user in [*linked.values(), *found_by(users, needed)]}
    assert plan_user_changes(targets, found.values(), link_rows, extracted) == \
        plan_user_changes(targets, every, link_rows, extracted)
    if case == "quiet night":
        assert needed == {"idnumber": [], "username": [], "email": []}


def deleted_row(user_id, old_username):
    """A linked account as get_users_by_field answers it after an administrator's delete_user() (lab finding 01)."""
    return {"id": user_id, "username": f"{old_username}.1796579788", "firstname": "Thabo", "lastname": "Mokoena",
            "email": "1c6f6ed0585725fcb5e1ff1573bf3eb3", "suspended": False, "auth": "manual"}


def test_a_link_to_an_account_an_administrator_deleted_is_dropped_and_a_new_account_planned():
    linked = links((1, "E001", 49, "thabo1@example.com"))
    plan = plan_user_changes(targets_of(employee(1)), [deleted_row(49, "thabo1@example.com")], linked, [1])
    assert plan.updates == [] and [c["idnumber"] for c in plan.creates] == ["E001"]
    assert plan.unlinks == [1] and plan.links == []
    [warning] = plan.outcomes
    assert (warning.action, warning.owner) == ("warning", "Moodle administrator")
    assert "account deleted in Moodle by an administrator: Moodle user #49" in warning.reason


def test_a_person_whose_linked_account_was_deleted_is_matched_again_by_id_number():
    users = [deleted_row(49, "thabo1@example.com"), moodle_user(60, "thabo1@example.com", "E001")]
    plan = plan_user_changes(targets_of(employee(1)), users, links((1, "E001", 49, "thabo1@example.com")), [1])
    assert plan.creates == [] and plan.updates == [] and plan.links == [(1, 60, "thabo1@example.com")]
    assert [o.action for o in plan.outcomes] == ["warning", "unchanged"] and plan.unlinks == [1]


def test_a_departed_employee_linked_to_a_deleted_account_is_unlinked_not_suspended():
    plan = plan_user_changes(targets_of(), [deleted_row(49, "thabo1@example.com")],
                             links((1, "E001", 49, "thabo1@example.com")), [])
    assert plan.updates == [] and plan.unlinks == [1] and plan.outcomes == []


def test_a_live_account_whose_email_merely_looks_like_hex_is_not_taken_for_deleted():
    """Only the whole shape is a deletion: '<username>.<time>', an md5 e-mail, no ID number, no profile fields."""
    hexmail = "1c6f6ed0585725fcb5e1ff1573bf3eb3"
    for user in (moodle_user(49, "thabo1@example.com", "E001", email=hexmail),
                 {**deleted_row(49, "thabo1@example.com"), "idnumber": "E001"},
                 {**deleted_row(49, "thabo1@example.com"), "username": "thabo1@example.com"},
                 {**deleted_row(49, "thabo1@example.com"), "customfields": [{"shortname": "gender", "value": "x"}]}):
        plan = plan_user_changes(targets_of(employee(1)), [user], links((1, "E001", 49, "thabo1@example.com")), [1])
        assert plan.creates == [] and plan.unlinks == [] and [u["id"] for u in plan.updates] == [49]


def test_look_ups_treat_a_deleted_linked_account_as_no_account():
    targets = targets_of(employee(1)).to_dict("records")
    wanted = look_ups_needed(targets, links((1, "E001", 49, "thabo1@example.com")),
                             {49: deleted_row(49, "thabo1@example.com")})
    assert wanted["idnumber"] == ["E001"] and wanted["username"] == ["thabo1@example.com"]
