"""Which MIS classes become Moodle courses: the group type's provisioning mode and the class's own override,
exactly as the rollover guide describes them (pure)."""

from __future__ import annotations

from enum import StrEnum

import pandas as pd

from school.config import ProvisioningMode


class ClassOverride(StrEnum):
    """A class's own setting, made when editing it in the MIS: enabled, disabled, or none (NULL)."""

    enabled = "enabled"
    disabled = "disabled"


_MODE_WORDS = {
    ProvisioningMode.disabled: "disabled unless enabled per class",
    ProvisioningMode.enabled_for_non_sms_controlled: "enabled for classes not controlled by the SMS",
    ProvisioningMode.enabled_for_sms_controlled: "enabled for classes that came from the SMS",
    ProvisioningMode.enabled: "enabled unless disabled per class",
}


def is_provisioned(mode: ProvisioningMode, sms_controlled: bool, override: ClassOverride | None) -> bool:
    """Always disabled ignores every class, whatever its override. Otherwise a class's override wins either way;
    without one, disabled gives no class, enabled every class, and the two SMS modes the classes that did (or
    did not) arrive from the Student Management System."""
    if mode is ProvisioningMode.always_disabled:
        return False
    if override is not None:
        return override is ClassOverride.enabled
    if mode is ProvisioningMode.enabled_for_non_sms_controlled:
        return not sms_controlled
    if mode is ProvisioningMode.enabled_for_sms_controlled:
        return sms_controlled
    return mode is ProvisioningMode.enabled


def provisioning_reason(group_type: str, mode: ProvisioningMode, sms_controlled: bool,
                        override: ClassOverride | None) -> str:
    """Why a class is, or is not, provisioned: the words support reads in the report."""
    if mode is ProvisioningMode.always_disabled:
        return f"group type '{group_type}' is always disabled"
    if override is not None:
        return f"the class's own setting is '{override}' (group type '{group_type}': {_MODE_WORDS[mode]})"
    origin = "came from the SMS" if sms_controlled else "was made in the MIS, not by the SMS"
    return f"group type '{group_type}' is {_MODE_WORDS[mode]}; the class {origin}"


def parse_override(value) -> ClassOverride | None:
    """The MIS column as the rule reads it: 'enabled', 'disabled', or nothing (NULL or blank)."""
    if value is None or pd.isna(value) or str(value).strip() == "":
        return None
    return ClassOverride(str(value).strip().lower())
