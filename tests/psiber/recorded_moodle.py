"""Answers of a live Moodle 4.5 site (``moodle_45_answers.json``, copied unchanged from its
recordings), so the flows' steps are tested on exactly what such a site sends."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

from moodle_provider.hooks.moodle import _error_from_moodle  # the hook's own reading of Moodle's error objects


@cache
def _answers() -> dict:
    return json.loads((Path(__file__).with_name("moodle_45_answers.json")).read_text())["answers"]


def answer(name: str):
    """The body Moodle answered in the recording ``name`` (a fresh copy: tests may change it)."""
    return copy.deepcopy(_answers()[name]["body"])


class RecordedSite:
    """Stands in for MoodleHook: answers calls with recorded bodies; an error object raises what the hook raises."""

    def __init__(self):
        self.answers: dict[tuple, object] = {}

    def answer(self, body, wsfunction: str, **params) -> None:
        self.answers[(wsfunction, tuple(sorted(params.items())))] = body

    def call(self, wsfunction, **params):
        body = copy.deepcopy(self.answers[(wsfunction, tuple(sorted(params.items())))])
        if isinstance(body, dict) and "exception" in body:
            raise _error_from_moodle(body, wsfunction)
        return body
