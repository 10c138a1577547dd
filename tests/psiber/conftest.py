"""Fixtures the PSIber step tests share."""

from __future__ import annotations

import json

import pytest

from factories import MOODLE_TOKEN
from moodle_stand_in import MoodleStandIn


@pytest.fixture
def moodle(monkeypatch):
    """A Moodle stand-in behind the Connection ``moodle``, as the test integration names it."""
    with MoodleStandIn(MOODLE_TOKEN) as stand_in:
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "moodle", "host": stand_in.base_url,
                                                              "password": MOODLE_TOKEN}))
        yield stand_in
