"""Answers of a live Moodle 4.5 site (``moodle_45_answers.json``, copied unchanged from its
recordings), so the flows' steps are tested on exactly what such a site sends."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path


@cache
def _answers() -> dict:
    return json.loads((Path(__file__).with_name("moodle_45_answers.json")).read_text())["answers"]


def answer(name: str):
    """The body Moodle answered in the recording ``name`` (a fresh copy: tests may change it)."""
    return copy.deepcopy(_answers()[name]["body"])
