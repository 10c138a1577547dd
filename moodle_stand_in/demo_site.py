"""What a Moodle administrator and the learners would have done on the demo site.

Courses with the seed's course custom fields (one without completion criteria, one hidden, one
in a category PSIber does not know yet), and a deterministic night of learning: enrolments,
course totals and completions, some of them failing.
"""

from __future__ import annotations

import random

DAY = 86_400

DEMO_COURSES = (
    # shortname, full name, category, ID number, custom fields, other settings
    ("DRV-101", "Defensive Driving", "Driver Training", "DRV-101",
     {"unitstandardid": "243235", "saqaregistered": "1", "passrate": "70", "anothertest": "Beginner",
      "nqflevel": "NQF 3"}, {}),
    ("DRV-201", "Heavy Vehicle Handling", "Driver Training", "DRV-201",
     {"unitstandardid": "123259", "saqaregistered": "1", "passrate": "75", "anothertest": "Intermediate",
      "nqflevel": "NQF 4"}, {}),
    ("DG-TRANSPORT", "Dangerous Goods Transport", "Driver Training", "",
     {"saqaregistered": "0", "passrate": "80", "anothertest": "Advanced", "nqflevel": "NQF 4"}, {}),
    ("HS-101", "Fire Safety", "Health and Safety", "HS-101",
     {"unitstandardid": "259604", "saqaregistered": "1", "passrate": "60", "nqflevel": "NQF 2"}, {}),
    ("HS-102", "First Aid Level 1", "Health and Safety", "HS-102",
     {"unitstandardid": "119567", "saqaregistered": "1", "passrate": "70", "nqflevel": "NQF 1"}, {}),
    ("ONB-1", "Company Induction", "Onboarding", "ONB-1", {}, {"enablecompletion": 0}),
    ("DRV-OLD", "Legacy Driving Theory", "Driver Training", "DRV-OLD", {"passrate": "50"}, {"visible": 0}),
)
LEARNING_COURSES = ("DRV-101", "DRV-201", "DG-TRANSPORT", "HS-101", "HS-102")


def add_demo_courses(moodle, start: int) -> dict[str, int]:
    """Categories and courses as an administrator would set them up; returns course ids by short name."""
    categories = {}
    ids = {}
    for shortname, fullname, category, idnumber, customfields, settings in DEMO_COURSES:
        if category not in categories:
            categories[category] = moodle.add_category(category)["id"]
        ids[shortname] = moodle.add_course(shortname, fullname, categoryid=categories[category], idnumber=idnumber,
                                           startdate=start, customfields=customfields, **settings)["id"]
    return ids


def simulate_learning(moodle, course_ids: dict[str, int], now: int, seed: int = 7) -> int:
    """Employees (Moodle users with an ID number) learn during the half hour before ``now``.

    Returns the number of enrolments made.
    """
    rng = random.Random(seed)
    pass_marks = {shortname: float(fields.get("passrate", 0)) for shortname, _, _, _, fields, _ in DEMO_COURSES}
    enrolments = 0
    for user in sorted(moodle.users.values(), key=lambda user: user["id"]):
        if not user.get("idnumber") or user.get("suspended"):
            continue
        for shortname in rng.sample(LEARNING_COURSES, 2):
            course_id = course_ids[shortname]
            moodle.enrol(user["id"], course_id)
            enrolments += 1
            if rng.random() < 0.35:
                continue  # enrolled, not graded yet
            grade = float(rng.randint(40, 100))
            graded_at = now - rng.randint(120, 1800)
            moodle.set_grade(course_id, user["id"], grade, dategraded=graded_at)
            if grade >= pass_marks[shortname] or rng.random() < 0.2:
                moodle.complete(course_id, user["id"], timecompleted=graded_at + 60)
        moodle.touch(user["id"], now - rng.randint(0, 1800))
    return enrolments
