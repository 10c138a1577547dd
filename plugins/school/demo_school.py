"""A demo school MIS (Greenfield High) for the demo and the tests, and its end-of-year rollover.

Five grades of students and their teachers, classes of every group type of the demo integration file
(include/integrations/school/greenfield_high.yaml): SMS-controlled registration, subject and teaching-group
classes, clubs made in the MIS, support groups, with class overrides both ways. A few records the sync must
refuse or report: a student without e-mail, one whose surname holds markup, and (on the Moodle side,
``HAND_MADE_MOODLE_USERS``) a teacher an administrator already made with the MIS External ID as ID number, and an
account holding a student's e-mail without an ID number.
"""

from __future__ import annotations

import random

from sqlalchemy import Engine

from school.school_db import (
    create_schema,
    insert_rows,
    replace_academic_year,
    select_classes,
    select_memberships,
    select_people,
    set_person_status,
)

GRADES = (8, 9, 10, 11, 12)
SUBJECTS = ("Mathematics", "English", "Natural Sciences", "History")
CLUBS = (("CHESS", "Chess Club", 0, None), ("DEBATE", "Debating Society", 0, None),
         ("ROBOT", "Robotics Club", 0, "disabled"), ("CHOIR", "School Choir", 1, None),
         ("DRAMA", "Drama Club", 1, "enabled"))
SUPPORT = (("READ", "Reading Support", None), ("MATHS-CATCHUP", "Maths Catch-up", "enabled"),
           ("STUDY", "Study Skills", None))
FIRST_NAMES = ("Thabo", "Anna", "Sipho", "Lerato", "Johan", "Nisha", "Pieter", "Zanele", "Ayesha", "Kagiso",
               "Megan", "Themba", "Fatima", "Ruan", "Naledi", "Sibusiso", "Chloe", "Mpho", "Yusuf", "Palesa")
LAST_NAMES = ("Mokoena", "van Wyk", "Dlamini", "Khumalo", "Botha", "Naidoo", "Nel", "Mahlangu", "Patel", "Molefe",
              "Smith", "Ndlovu", "Ebrahim", "Pretorius", "Sithole", "Zulu", "Jacobs", "Mabena", "Moosa", "Radebe")
# Course categories an administrator made in Moodle, by the ID numbers the integration file names.
MOODLE_CATEGORIES = (("Greenfield High", "GFH", None), ("Subjects", "GFH-SUBJECTS", "GFH"),
                     ("Teaching groups", "GFH-GROUPS", "GFH"), ("Clubs", "GFH-CLUBS", "GFH"),
                     ("Support", "GFH-SUPPORT", "GFH"), ("Registration", "GFH-REGISTRATION", "GFH"),
                     ("Archive", "GFH-ARCHIVE", "GFH"))
TEACHER_ALREADY_IN_MOODLE = "T-1001"
STUDENT_EMAIL_TAKEN = "S-2005"
STUDENT_WITHOUT_EMAIL = "S-2007"
STUDENT_WITH_MARKUP = "S-2009"
HAND_MADE_MOODLE_USERS = (
    {"username": "tmokoena", "firstname": "Thabo", "lastname": "Mokoena", "email": "t-1001@greenfield.example",
     "idnumber": TEACHER_ALREADY_IN_MOODLE},
    {"username": "old.account", "firstname": "Old", "lastname": "Account", "email": "s-2005@greenfield.example"},
)
FIRST_YEAR = 2027


def _name(number: int) -> tuple[str, str]:
    return FIRST_NAMES[number % len(FIRST_NAMES)], LAST_NAMES[(number // len(FIRST_NAMES)) % len(LAST_NAMES)]


def _person(external_id: str, role: str, number: int) -> dict:
    first, last = _name(number)
    return {"external_id": external_id, "role": role, "first_name": first, "last_name": last,
            "email": f"{external_id.lower()}@greenfield.example",
            "username": external_id.lower() if role == "student" else None, "status": "active"}


def _class(external_id: str, code: str, name: str, group_type: str, sms: int, override: str | None,
           year: int) -> dict:
    return {"external_id": external_id, "code": code, "name": name, "group_type": group_type, "sms_controlled": sms,
            "provisioning_override": override, "academic_year": year}


def demo_classes(year: int) -> list[dict]:
    """A year's classes: 10 registration, 20 subject, 10 teaching-group, 5 club and 3 support classes."""
    classes = []
    for grade in GRADES:
        for form in ("A", "B"):
            classes.append(_class(f"REG-{year}-{grade}{form}", f"{grade}{form}", f"Registration {grade}{form}",
                                  "Registration", 1, None, year))
        for subject in SUBJECTS:
            code = f"{grade}-{subject.split()[-1][:4].upper()}"
            override = "disabled" if (grade, subject) == (12, "History") else None
            classes.append(_class(f"SUB-{year}-{code}", code, f"Grade {grade} {subject}", "Subject", 1, override,
                                  year))
        for group in (1, 2):
            manual = grade == 10 and group == 2  # a set the school made by hand: the SMS mode leaves it out
            override = "enabled" if (grade, group) == (11, 2) else None
            classes.append(_class(f"GRP-{year}-{grade}-{group}", f"{grade}-MATHS-SET{group}",
                                  f"Grade {grade} Maths Set {group}", "Teaching group", 0 if manual else 1,
                                  override, year))
    for code, name, sms, override in CLUBS:
        classes.append(_class(f"CLB-{year}-{code}", code, name, "Club", sms, override, year))
    for code, name, override in SUPPORT:
        classes.append(_class(f"SUP-{year}-{code}", code, name, "Support", 0, override, year))
    return classes


def _memberships(classes: list[dict], grades: dict[str, int], teachers: list[str], seed: int) -> list[dict]:
    """Students in their grade's registration class, subjects and one teaching group, some in a club or
    support group; a teacher in every class."""
    rng = random.Random(seed)
    by_grade: dict[int, list[dict]] = {}
    for klass in classes:
        grade = klass["code"].split("-")[0].rstrip("AB")
        if grade.isdigit():
            by_grade.setdefault(int(grade), []).append(klass)
    extra = [klass for klass in classes if klass["group_type"] in ("Club", "Support")]
    rows = []
    for student, grade in sorted(grades.items()):
        mine = by_grade.get(grade, [])
        form = "A" if int(student.split("-")[1]) % 2 else "B"
        chosen = [k for k in mine if k["group_type"] == "Subject"]
        chosen += [k for k in mine if k["group_type"] == "Registration" and k["code"].endswith(form)]
        chosen.append(rng.choice([k for k in mine if k["group_type"] == "Teaching group"]))
        if rng.random() < 0.3:
            chosen.append(rng.choice(extra))
        rows += [{"person_external_id": student, "class_external_id": k["external_id"], "role": "student"}
                 for k in chosen]
    for number, klass in enumerate(classes):
        rows.append({"person_external_id": teachers[number % len(teachers)],
                     "class_external_id": klass["external_id"], "role": "teacher"})
    return rows


def seed_demo_school(engine: Engine, students: int = 300, teachers: int = 30) -> bool:
    """Create the MIS tables and the demo school's first academic year; False when it is already there."""
    create_schema(engine)
    if len(select_people(engine)):
        return False
    teacher_ids = [f"T-{1001 + n}" for n in range(teachers)]
    student_ids = [f"S-{2001 + n}" for n in range(students)]
    people = [_person(external_id, "teacher", n) for n, external_id in enumerate(teacher_ids)]
    people += [_person(external_id, "student", n + teachers) for n, external_id in enumerate(student_ids)]
    for person in people:
        if person["external_id"] == STUDENT_WITHOUT_EMAIL:
            person["email"] = None
        if person["external_id"] == STUDENT_WITH_MARKUP:
            person["last_name"] = "<b>Bold</b>"
    classes = demo_classes(FIRST_YEAR)
    grades = {student: GRADES[n * len(GRADES) // students] for n, student in enumerate(student_ids)}
    insert_rows(engine, "person", people)
    insert_rows(engine, "class", classes)
    insert_rows(engine, "membership", _memberships(classes, grades, teacher_ids, seed=FIRST_YEAR))
    return True


def roll_over(engine: Engine, from_year: int = FIRST_YEAR, new_students: int = 40) -> dict[str, list[str]]:
    """The MIS's end-of-year rollover: the year's classes are replaced by the next year's, the top grade leaves
    (status 'left'), one teacher leaves, the other students move up a grade and a new grade 8 arrives.

    Returns the External IDs of those who left and of the new students."""
    people = select_people(engine)
    active = people[people["status"] == "active"]
    teachers = sorted(active[active["role"] == "teacher"]["external_id"])
    year = from_year + 1
    registration = {row.external_id: int(row.code.rstrip("AB")) for row in select_classes(engine).itertuples()
                    if row.group_type == "Registration" and int(row.academic_year) == from_year}
    grades = {row.person_external_id: registration[row.class_external_id]
              for row in select_memberships(engine).itertuples()
              if row.class_external_id in registration and row.role == "student"}
    leavers = [student for student, grade in grades.items() if grade == GRADES[-1]] + [teachers[-1]]
    last = max(int(external_id.split("-")[1]) for external_id in people["external_id"] if external_id[0] == "S")
    newcomers = [f"S-{last + 1 + n}" for n in range(new_students)]
    staying = {student: grade + 1 for student, grade in grades.items() if grade != GRADES[-1]}
    replace_academic_year(engine, from_year)
    set_person_status(engine, dict.fromkeys(leavers, "left"))
    insert_rows(engine, "person", [_person(external_id, "student", int(external_id.split("-")[1]))
                                   for external_id in newcomers])
    classes = demo_classes(year)
    insert_rows(engine, "class", classes)
    insert_rows(engine, "membership", _memberships(classes, {**staying, **dict.fromkeys(newcomers, GRADES[0])},
                                                   teachers[:-1], seed=year))
    return {"left": leavers, "new": newcomers}


def set_up_moodle(moodle) -> dict[str, int]:
    """What the school's Moodle administrator did before the first run, on a Moodle stand-in: the course
    categories the integration file names, the hand-made accounts, and the integration's web-service user
    (which may assign the student and editing teacher roles only). Returns category ids by ID number."""
    ids: dict[str, int] = {}
    for name, idnumber, parent in MOODLE_CATEGORIES:
        ids[idnumber] = moodle.add_category(name, parent=ids[parent] if parent else 0, idnumber=idnumber)["id"]
    for account in HAND_MADE_MOODLE_USERS:
        moodle.add_user(**account)
    service_user = moodle.add_user(username="schoolws", firstname="School", lastname="Integration",
                                   email="schoolws@greenfield.example")
    moodle.set_token_user(service_user["id"])
    return ids
