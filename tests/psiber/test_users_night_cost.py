"""A quiet night's Moodle look-ups in the users flow do not grow with the population (issue 20: at most 5 calls
per 1,000 employees for the whole night): no linked account is read, only employees without one are looked for.
Counted at the stand-in, never timed."""

from __future__ import annotations

import json
import time

from sqlalchemy import create_engine
from test_users_night_reads import night

from factories import MOODLE_TOKEN, integration
from moodle_stand_in import MoodleStandIn
from psiber.demo_company import seed_demo_company


def quiet_night_calls(monkeypatch, tmp_path, employees: int) -> tuple[int, int]:
    """The quiet second night's users-flow Moodle calls, and how many linked accounts it looked up by id."""
    engine = create_engine(f"sqlite:///{tmp_path / f'psiber-{employees}.db'}")
    seed_demo_company(engine, employees=employees)
    settings = integration(safety={"max_invalid_share": 0.5})
    start = int(time.time())
    with MoodleStandIn(MOODLE_TOKEN) as moodle:
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE", json.dumps({"conn_type": "moodle", "host": moodle.base_url,
                                                              "password": MOODLE_TOKEN}))
        night(moodle, settings, engine, tmp_path / f"first-{employees}", now=start)
        _, ids, _ = night(moodle, settings, engine, tmp_path / f"quiet-{employees}", now=start + 86_400)
        return len(moodle.calls), len(ids)


def test_a_quiet_nights_users_flow_calls_do_not_grow_with_the_population(monkeypatch, tmp_path):
    small, small_ids = quiet_night_calls(monkeypatch, tmp_path, 100)
    large, large_ids = quiet_night_calls(monkeypatch, tmp_path, 400)
    print(f"quiet night, users flow: {small} calls at 100 employees, {large} at 400")
    assert small_ids == large_ids == 0
    assert large - small <= 5 * (400 - 100) / 1000
