"""The five provisioning modes × the class's override × the SMS flag, as the rollover guide states them."""

from __future__ import annotations

import pytest

from school.config import ProvisioningMode as Mode
from school.provisioning import ClassOverride, is_provisioned, parse_override, provisioning_reason

ON, OFF, NONE = ClassOverride.enabled, ClassOverride.disabled, None
SMS, MANUAL = True, False

# mode, SMS-controlled, override -> provisioned
TABLE = [
    # Always disabled: ignored, whatever the class says.
    (Mode.always_disabled, SMS, NONE, False), (Mode.always_disabled, MANUAL, NONE, False),
    (Mode.always_disabled, SMS, ON, False), (Mode.always_disabled, MANUAL, ON, False),
    (Mode.always_disabled, SMS, OFF, False), (Mode.always_disabled, MANUAL, OFF, False),
    # Disabled: ignored unless enabled for the class.
    (Mode.disabled, SMS, NONE, False), (Mode.disabled, MANUAL, NONE, False),
    (Mode.disabled, SMS, ON, True), (Mode.disabled, MANUAL, ON, True),
    (Mode.disabled, SMS, OFF, False), (Mode.disabled, MANUAL, OFF, False),
    # Enabled for non-SMS controlled groups: manual classes; overridable either way.
    (Mode.enabled_for_non_sms_controlled, SMS, NONE, False), (Mode.enabled_for_non_sms_controlled, MANUAL, NONE, True),
    (Mode.enabled_for_non_sms_controlled, SMS, ON, True), (Mode.enabled_for_non_sms_controlled, MANUAL, ON, True),
    (Mode.enabled_for_non_sms_controlled, SMS, OFF, False), (Mode.enabled_for_non_sms_controlled, MANUAL, OFF, False),
    # Enabled for SMS controlled groups: classes from the SMS; overridable either way.
    (Mode.enabled_for_sms_controlled, SMS, NONE, True), (Mode.enabled_for_sms_controlled, MANUAL, NONE, False),
    (Mode.enabled_for_sms_controlled, SMS, ON, True), (Mode.enabled_for_sms_controlled, MANUAL, ON, True),
    (Mode.enabled_for_sms_controlled, SMS, OFF, False), (Mode.enabled_for_sms_controlled, MANUAL, OFF, False),
    # Enabled: provisioned unless disabled for the class.
    (Mode.enabled, SMS, NONE, True), (Mode.enabled, MANUAL, NONE, True),
    (Mode.enabled, SMS, ON, True), (Mode.enabled, MANUAL, ON, True),
    (Mode.enabled, SMS, OFF, False), (Mode.enabled, MANUAL, OFF, False),
]


def test_the_table_covers_every_combination():
    assert {(mode, sms, override) for mode, sms, override, _ in TABLE} == \
        {(mode, sms, override) for mode in Mode for sms in (SMS, MANUAL) for override in (ON, OFF, NONE)}


@pytest.mark.parametrize(("mode", "sms", "override", "provisioned"), TABLE,
                         ids=[f"{m}-{'sms' if s else 'manual'}-{o or 'none'}" for m, s, o, _ in TABLE])
def test_mode_override_and_sms_flag(mode, sms, override, provisioned):
    assert is_provisioned(mode, sms, override) is provisioned


def test_reasons_name_the_rule_that_decided():
    assert provisioning_reason("Registration", Mode.always_disabled, SMS, ON) == \
        "group type 'Registration' is always disabled"
    assert provisioning_reason("Subject", Mode.enabled, MANUAL, OFF) == \
        "the class's own setting is 'disabled' (group type 'Subject': enabled unless disabled per class)"
    assert provisioning_reason("Club", Mode.enabled_for_sms_controlled, MANUAL, NONE) == \
        "group type 'Club' is enabled for classes that came from the SMS; the class was made in the MIS, not by the SMS"


@pytest.mark.parametrize(("value", "override"), [(None, None), (float("nan"), None), ("", None), (" ", None),
                                                 ("enabled", ON), ("Disabled", OFF)])
def test_the_mis_override_column(value, override):
    assert parse_override(value) is override


def test_an_unknown_override_is_refused():
    with pytest.raises(ValueError):
        parse_override("maybe")
