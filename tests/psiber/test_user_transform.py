import pandas as pd

from factories import employee, employees, integration
from psiber.user_transform import build_target_users, is_active, pseudo_email


def test_pseudo_email_matches_the_seed_example():
    assert pseudo_email("A011455", "cc220", "jhb.com") == "A011455cc220@jhb.com"


def test_pseudo_email_drops_spaces_inside_the_id():
    assert pseudo_email("800101 5009 087", "E1", "jhb.com") == "8001015009087E1@jhb.com"


def test_username_and_email_come_from_the_employee_email_lower_cased():
    targets, outcomes = build_target_users(employees(employee(1, email="Thabo.Mokoena@Example.COM ")), integration())
    row = targets.iloc[0]
    assert (row["username"], row["email"]) == ("thabo.mokoena@example.com", "thabo.mokoena@example.com")
    assert (row["firstname"], row["lastname"], row["idnumber"]) == ("Thabo", "Mokoena", "E001")
    assert outcomes == []


def test_employee_without_email_gets_pseudo_email_from_id_else_passport():
    targets, _ = build_target_users(
        employees(employee(1, email=None, id_number="8001015009087"),
                  employee(2, email=None, id_number=None, passport_number="A011455", employee_number="cc220")),
        integration(),
    )
    assert list(targets["email"]) == ["8001015009087e001@jhb.com", "a011455cc220@jhb.com"]
    assert list(targets["username"]) == list(targets["email"])


def test_employment_status_outside_active_statuses_means_suspended():
    targets, _ = build_target_users(
        employees(employee(1), employee(2, employment_status="Terminated"), employee(3, employment_status="active")),
        integration(),
    )
    assert list(targets["suspended"]) == [False, True, False]


def test_matched_profile_fields_and_menu_values_outside_options_are_warnings():
    config = integration(users={"profile_field_matches": [
        {"moodle_field": "gender", "psiber_element": "gender", "menu_options": ["Male", "Female"]},
        {"moodle_field": "employmenttype", "psiber_element": "employment_type",
         "menu_options": ["Permanent", "Contract"]},
        {"moodle_field": "uifref", "psiber_element": "uif_ref"},
    ]})
    targets, outcomes = build_target_users(
        employees(employee(1), employee(2, employment_type="Learnership")), config)
    assert targets.iloc[0]["customfields"] == {"gender": "Male", "employmenttype": "Permanent", "uifref": "U1"}
    assert targets.iloc[1]["customfields"] == {"gender": "Male", "uifref": "U1"}
    assert [(o.record, o.action) for o in outcomes] == [("E002", "warning")]
    assert "employment_type value is not an option of Moodle menu field 'employmenttype'" in outcomes[0].reason
    assert "Learnership" not in outcomes[0].reason


def test_employees_sharing_an_email_are_both_conflicts_and_get_no_user():
    targets, outcomes = build_target_users(
        employees(employee(1, email="shared@example.com"), employee(2, email="SHARED@example.com"), employee(3)),
        integration(),
    )
    assert list(targets["employee_number"]) == ["E003"]
    assert sorted((o.record, o.action) for o in outcomes) == [("E001", "conflict"), ("E002", "conflict")]
    assert "also used by employee(s) E002" in outcomes[0].reason
    assert "shared@" not in " ".join(o.reason for o in outcomes)


def test_an_address_moodle_cannot_take_as_username_is_invalid_unless_extended_chars_are_allowed():
    rows = employees(employee(1, email="Sean.O'Neill@example.com"), employee(2, email="a+b@example.com"),
                     employee(3, email=None, id_number=None, passport_number="AB/123"), employee(4))
    targets, outcomes = build_target_users(rows, integration())
    assert list(targets["employee_number"]) == ["E004"]
    assert [(o.record, o.action) for o in outcomes] == [("E001", "invalid"), ("E002", "invalid"),
                                                        ("E003", "invalid")]
    assert "pseudo e-mail (ID/passport + employee number) has characters" in outcomes[2].reason
    extended, _ = build_target_users(rows, integration(users={"extended_username_chars": True}))
    assert len(extended) == 4


def test_a_status_is_active_as_the_transform_reads_it_trimmed_in_any_case():
    statuses = pd.Series([" Active", "ACTIVE ", None, "Terminated", float("nan")], dtype=object)
    assert is_active(statuses, integration()).tolist() == [True, True, False, False, False]
    assert is_active(pd.Series([], dtype=object), integration()).tolist() == []
