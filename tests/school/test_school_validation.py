"""School MIS validation: what Moodle would refuse or take for one record is caught before any call."""

from __future__ import annotations

import pandas as pd

from school.validation import validate_classes, validate_people


def people(*external_ids: str) -> pd.DataFrame:
    return pd.DataFrame([{"external_id": external_id, "role": "student", "first_name": "Sipho",
                          "last_name": "Dlamini", "email": f"p{n}@school.example", "username": None,
                          "status": "active"} for n, external_id in enumerate(external_ids)], dtype=object)


def classes(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame([{"external_id": external_id, "code": f"C{n}", "name": name, "group_type": "Subject",
                          "sms_controlled": 0, "provisioning_override": None, "academic_year": 2027}
                         for n, (external_id, name) in enumerate(rows)], dtype=object)


def reasons(result) -> dict[str, list[str]]:
    return {problem.record: list(problem.reasons) for problem in result.invalid}


def test_people_whose_external_ids_differ_only_in_case_or_spaces_are_all_invalid():
    result = validate_people(people("S-2001", "s-2001", " S-2002", "S-2003 ", "S-2004"))
    found = reasons(result)
    assert list(result.valid["external_id"]) == ["S-2004"]
    assert all("used by more than one person once spaces and letter case are ignored" in " ".join(found[key])
               for key in ("S-2001", "s-2001"))
    assert all("spaces at its start or end" in " ".join(found[key]) for key in (" S-2002", "S-2003 "))


def test_classes_whose_external_ids_differ_only_in_case_or_spaces_are_all_invalid():
    result = validate_classes(classes(("C-1", "Maths"), (" C-1", "Maths"), ("C-2", "Science")))
    assert list(result.valid["external_id"]) == ["C-2"]
    assert "used by more than one class" in " ".join(reasons(result)["C-1"])


def test_a_class_name_with_markup_is_invalid_before_anything_is_sent():
    result = validate_classes(classes(("C-1", "Maths <b>Honours</b>"), ("C-2", "Science > Physics"),
                                      ("C-3", "History")))
    assert list(result.valid["external_id"]) == ["C-3"]
    assert all("class name contains markup characters" in " ".join(reasons(result)[key]) for key in ("C-1", "C-2"))
