"""School integration files: typed settings, defaults that delete nothing, errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from psiber.config import load_integrations
from school.config import (
    CourseDeletion,
    ProvisioningMode,
    SchoolConfigError,
    Synchronisation,
    load_school_integration,
    load_school_integrations,
)

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = """
name: Test School
moodle_conn_id: moodle_x
school_conn_id: school_x
group_types:
  Subject: {provisioning: enabled, category: SUBJ}
"""


def write(tmp_path: Path, text: str, name: str = "school.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_demo_school_file_loads():
    integration = load_school_integration(ROOT / "include" / "integrations" / "school" / "greenfield_high.yaml")
    assert integration.key == "greenfield_high"
    assert integration.group_types["Registration"].provisioning is ProvisioningMode.always_disabled
    assert integration.group_types["Teaching group"].format == "weeks"


def test_defaults_delete_nothing_and_run_on_the_schedule(tmp_path):
    integration = load_school_integration(write(tmp_path, MINIMAL))
    assert (integration.deletion.users, integration.deletion.enrolments, integration.deletion.courses) == \
        (False, False, CourseDeletion.dont_delete)
    assert integration.synchronisation is Synchronisation.enabled and integration.scheduled
    group = integration.group_types["Subject"]
    assert (group.format, group.visible) == ("topics", True)
    assert (integration.roles.student, integration.roles.teacher) == (5, 3)


@pytest.mark.parametrize(("change", "field", "words"), [
    ("  Subject: {provisioning: sometimes, category: SUBJ}", "group_types.Subject.provisioning", "Input should be"),
    ("  Subject: {provisioning: enabled, category: SUBJ, format: termly}", "(top)", "course format 'termly'"),
    ("  Subject: {provisioning: enabled}", "group_types.Subject.category", "Field required"),
    ("  Subject: {provisioning: enabled, category: SUBJ}\ndeletion: {courses: always}", "deletion.courses",
     "Input should be"),
    ("  Subject: {provisioning: enabled, category: SUBJ}\nsynchronisation: sometimes", "synchronisation",
     "Input should be"),
    ("  Subject: {provisioning: enabled, category: SUBJ}\nacademic_year_start: '02-30'", "academic_year_start",
     "not a month and day"),
    ("  Subject: {provisioning: enabled, category: SUBJ}\nmoodle_token: abc", "moodle_token", "Extra inputs"),
])
def test_a_bad_setting_is_an_error_naming_file_and_field(tmp_path, change, field, words):
    text = MINIMAL.replace("  Subject: {provisioning: enabled, category: SUBJ}", change)
    path = write(tmp_path, text)
    with pytest.raises(SchoolConfigError) as raised:
        load_school_integration(path)
    message = str(raised.value)
    assert str(path) in message and f"field '{field}'" in message and words in message
    assert "owner: the data engineer" in message


def test_a_site_format_plugin_is_listed_explicitly(tmp_path):
    text = MINIMAL.replace("category: SUBJ}", "category: SUBJ, format: tiles}") + "extra_course_formats: [tiles]\n"
    assert load_school_integration(write(tmp_path, text)).group_types["Subject"].format == "tiles"


def test_good_files_load_beside_bad_ones_and_names_stay_unique(tmp_path):
    write(tmp_path, MINIMAL, "a.yaml")
    write(tmp_path, MINIMAL, "b.yaml")
    write(tmp_path, "name: [", "c.yaml")
    good, bad = load_school_integrations(tmp_path)
    assert [path.name for path in good] == ["a.yaml"]
    assert sorted(path.name for path in bad) == ["b.yaml", "c.yaml"]
    assert "already used by" in str(bad[tmp_path / "b.yaml"])


def test_course_dates_are_the_academic_year_in_the_school_time_zone(tmp_path):
    integration = load_school_integration(write(tmp_path, MINIMAL + "timezone: Africa/Johannesburg\n"
                                                                    "academic_year_start: '01-15'\n"))
    start, end = integration.course_dates(2027)
    assert start == 1799964000  # 2027-01-15 00:00 SAST
    assert end == start + 365 * 86_400 - 1


def test_psiber_does_not_read_school_files():
    """PSIber's loader reads include/integrations/*.yaml only; school files live in their own folder."""
    good, bad = load_integrations(ROOT / "include" / "integrations")
    assert not any("school" in str(path) for path in [*good, *bad])
    school, errors = load_school_integrations(ROOT / "include" / "integrations" / "school")
    assert school and not errors
