from pathlib import Path

import pytest

from factories import GOOD, write
from psiber.config import IntegrationConfigError, load_integration, load_integrations

ROOT = Path(__file__).resolve().parents[2]
def test_the_shipped_demo_integration_is_valid():
    integration = load_integration(ROOT / "include" / "integrations" / "demo.yaml")
    assert integration.key == "driver_training"
    assert integration.users.new_user_passwords.policy.value == "initial_password"


def test_defaults_are_daily_all_payrolls_and_moodle_generated_passwords(tmp_path):
    integration = load_integration(write(tmp_path, "a.yaml", GOOD))
    assert (integration.schedule, integration.payrolls, integration.enabled) == ("@daily", "all", True)
    assert integration.pseudo_email_domain == "jhb.com"
    assert integration.users.new_user_passwords.policy.value == "moodle_generated"


@pytest.mark.parametrize(("extra", "field"), [
    ("payrolls: []", "payrolls"),
    ("pseudo_email_domain: not a domain", "pseudo_email_domain"),
    ("users: {batch_size: 0}", "users.batch_size"),
    ("users: {new_user_passwords: {policy: initial_password}}", "users.new_user_passwords"),
    ("users: {profile_field_matches: [{moodle_field: gender, psiber_element: salary}]}",
     "users.profile_field_matches.0.psiber_element"),
    ("moodle_token: abc", "moodle_token"),
    ("safety: {max_suspend_share: 2}", "safety.max_suspend_share"),
    ("schedule: every night", "schedule"),
    ("timezone: Mars/Olympus", "timezone"),
])
def test_a_bad_field_is_named_with_the_file_and_owner(tmp_path, extra, field):
    text = "\n".join(line for line in GOOD.splitlines() if not line.startswith(extra.split(":")[0] + ":"))
    path = write(tmp_path, "bad.yaml", text + "\n" + extra + "\n")
    with pytest.raises(IntegrationConfigError) as error:
        load_integration(path)
    assert str(path) in str(error.value)
    assert f"field '{field}'" in str(error.value)
    assert "owner: the data engineer" in str(error.value)


def test_unreadable_yaml_is_named(tmp_path):
    with pytest.raises(IntegrationConfigError, match="bad.yaml: cannot be read as YAML"):
        load_integration(write(tmp_path, "bad.yaml", "name: [unclosed"))


def test_bad_files_are_reported_apart_and_duplicate_names_refused(tmp_path):
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD)
    write(tmp_path, "c.yaml", "name: x\n")
    good, bad = load_integrations(tmp_path)
    assert [p.name for p in good] == ["a.yaml"]
    assert sorted(p.name for p in bad) == ["b.yaml", "c.yaml"]
    assert "already used by" in str(bad[tmp_path / "b.yaml"])



def test_cron_schedules_and_presets_are_accepted(tmp_path):
    assert load_integration(write(tmp_path, "a.yaml", GOOD + "schedule: '30 1 * * 1-5'\n")).schedule == "30 1 * * 1-5"
    assert load_integration(write(tmp_path, "b.yaml", GOOD + "schedule: '@weekly'\n")).schedule == "@weekly"
