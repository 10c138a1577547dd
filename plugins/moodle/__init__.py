"""Moodle web services for Airflow: a hook and its typed exceptions."""

from moodle.exceptions import MoodleError
from moodle.hook import MoodleHook

__all__ = ["MoodleError", "MoodleHook"]
