"""What the demo site's teachers add for ESS to announce: assignments and quizzes with due dates."""

from __future__ import annotations

from .ess import add_activity

DAY = 86_400
# shortname, module, name, days until due (assignment) or until it closes (quiz)
DEMO_ASSESSMENTS = (
    ("HS-101", "assign", "Fire extinguisher drill report", 14),
    ("HS-101", "quiz", "Fire safety quiz", 7),
    ("DRV-101", "quiz", "Road signs quiz", 21),
)


def add_demo_assessments(moodle, course_ids: dict[str, int], now: int) -> int:
    """Returns the number of activities added."""
    for shortname, modname, name, days in DEMO_ASSESSMENTS:
        due = {"duedate": now + days * DAY} if modname == "assign" else {"timeopen": now, "timeclose": now + days * DAY}
        add_activity(moodle, course_ids[shortname], modname, name, intro=f"{name}: instructions.", **due)
    return len(DEMO_ASSESSMENTS)
