"""fail_fast_unless_transient: permanent failures skip the retries; transient ones and timeouts keep them."""

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowTaskTimeout

from moodle_provider.exceptions import MoodleInvalidTokenError, MoodleMaintenanceError, MoodleTaskTimeout
from sync_common.task_failures import fail_fast_unless_transient


def step_raising(error):
    @fail_fast_unless_transient
    def read_completions():
        raise error
    return read_completions


def test_a_permanent_moodle_failure_fails_the_task_without_retries():
    with pytest.raises(AirflowFailException, match="Invalid token"):
        step_raising(MoodleInvalidTokenError("Invalid token"))()


def test_a_transient_failure_keeps_the_retries_and_its_kind():
    with pytest.raises(MoodleMaintenanceError, match="site in maintenance mode"):
        step_raising(MoodleMaintenanceError("site in maintenance mode"))()


def test_a_timeout_while_waiting_for_moodle_names_the_task_the_function_and_the_owner():
    with pytest.raises(AirflowTaskTimeout) as raised:
        step_raising(MoodleTaskTimeout("core_enrol_get_users_courses"))()
    assert not isinstance(raised.value, AirflowFailException)  # Airflow retries it
    assert str(raised.value) == ("read_completions timed out: execution_timeout passed while waiting for Moodle's "
                                 "core_enrol_get_users_courses (owner: Moodle administrator / IT (network))")


def test_a_timeout_elsewhere_names_the_task_and_who_sizes_the_timeouts():
    with pytest.raises(AirflowTaskTimeout) as raised:
        step_raising(AirflowTaskTimeout("Timeout, PID: 42"))()
    assert str(raised.value).startswith("read_completions timed out: execution_timeout passed while it worked")
    assert "owner: the integration's maintainer (its timeouts) / the administrator of its database" in str(raised.value)
