"""The shared machinery serves every integration kind alike: no module of it names a source system, in its code,
its strings or its page templates, so a new kind is added in a folder of its own with nothing changed here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
SHARED = sorted([*(PLUGINS / "sync_common").rglob("*.py"), *(PLUGINS / "sync_common").rglob("*.html"),
                 PLUGINS / "moodle_sync_report.py"])
# Every source system's package beside the shared one, and the words its records and owners are named by.
SOURCE_SYSTEMS = sorted({path.parent.name for path in PLUGINS.glob("*/kind.py")} | {"psiber", "school", "hr_file"})
NAMES = re.compile("|".join([*SOURCE_SYSTEMS, r"\bmis\b", r"\bhr\b"]), re.IGNORECASE)


def test_the_source_systems_are_found_by_their_registrations():
    assert {"psiber", "school"} <= set(SOURCE_SYSTEMS)


@pytest.mark.parametrize("path", SHARED, ids=lambda path: str(path.relative_to(PLUGINS)))
def test_no_module_of_the_shared_machinery_names_a_source_system(path):
    named = [f"{number}: {line.strip()}" for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if NAMES.search(line)]
    assert named == [], f"{path.name} names a source system"
