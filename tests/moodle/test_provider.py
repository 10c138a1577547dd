"""The Moodle provider as Airflow sees it: listed by the providers CLI, its Connection form, and the form's Test
button through Airflow's own API (POST /api/v2/connections/test) against the stand-in."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from fastapi.testclient import TestClient

from moodle_provider.functions import FUNCTIONS, SITE_INFO
from moodle_provider.get_provider_info import get_provider_info
from moodle_provider.hooks.moodle import MoodleHook
from moodle_stand_in import MoodleStandIn

TOKEN = "0123456789abcdef0123456789abcdef"
AIRFLOW = str(Path(sys.executable).parent / "airflow")


def airflow_cli(*args: str) -> list[dict]:
    done = subprocess.run([AIRFLOW, *args, "--output", "yaml"], capture_output=True, text=True, check=True,
                          env=os.environ.copy())
    return yaml.safe_load(done.stdout)


def test_airflow_lists_the_provider_and_its_hook():
    providers = {row["package_name"]: row for row in airflow_cli("providers", "list")}
    assert providers["airflow-provider-moodle-lms"]["version"] == "1.0.0"
    hooks = {row["connection_type"]: row for row in airflow_cli("providers", "hooks")}
    assert hooks["moodle"] == {"class": "moodle_provider.hooks.moodle.MoodleHook", "connection_type": "moodle",
                               "conn_id_attribute_name": "moodle_conn_id", "hook_name": "Moodle",
                               "package_name": "airflow-provider-moodle-lms"}


def test_airflow_loads_no_module_of_the_provider_as_a_plugin():
    """Airflow imports every .py file of the plugins folder its .airflowignore lets through, under its bare name
    (hooks/moodle.py as the module "moodle"): the provider's files must stay out."""
    from airflow._shared.module_loading import find_path_from_directory

    plugins = Path(__file__).resolve().parents[2] / "plugins"
    loaded = [Path(path) for path in find_path_from_directory(str(plugins), ".airflowignore", "glob")
              if path.endswith(".py")]
    assert [path.parent for path in loaded] == [plugins]  # the one UI plugin module, beside the packages


@pytest.fixture(scope="module")
def api(airflow_db):
    """Airflow's API app, with connection testing enabled, and an admin's token."""
    patch = pytest.MonkeyPatch()
    patch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    patch.setenv("AIRFLOW__CORE__AUTH_MANAGER",
                 "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager")
    patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    patch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(64))
    from airflow.api_fastapi.app import create_app, get_auth_manager, purge_cached_app

    purge_cached_app()
    app = create_app("core")
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
    yield TestClient(app, headers={"Authorization": f"Bearer {token}"})
    purge_cached_app()
    patch.undo()


def test_the_connection_form_shows_the_site_url_the_token_and_the_two_time_limits(api):
    forms = {form["connection_type"]: form for form in api.get("/ui/connections/hook_meta").json()}
    form = forms["moodle"]
    assert form["hook_name"] == "Moodle"
    fields = form["standard_fields"]
    assert fields["host"]["title"] == "Moodle site URL" and not fields["host"]["hidden"]
    assert fields["host"]["placeholder"] == "https://moodle.example.com"
    assert fields["password"]["title"] == "Web service token" and not fields["password"]["hidden"]
    assert all(fields[name]["hidden"] for name in ("login", "url_schema", "port"))
    extra = form["extra_fields"]
    assert {name: (field["value"], field["schema"]["title"], field["schema"]["type"])
            for name, field in extra.items()} == {"timeout": (60, "Timeout (seconds)", ["integer", "null"]),
                                                  "deadline": (120, "Deadline (seconds)", ["integer", "null"])}


def test_older_airflow_gets_the_same_form_from_the_hook():
    """Airflow before 3.2 builds the form from the hook's methods: they say what get_provider_info declares."""
    declared = get_provider_info()["connection-types"][0]
    widgets = MoodleHook.get_connection_form_widgets()
    assert {name: (str(field.args[0]), field.kwargs["default"]) for name, field in widgets.items()} == \
        {name: (spec["label"], spec["schema"]["default"]) for name, spec in declared["conn-fields"].items()}
    behaviour = MoodleHook.get_ui_field_behaviour()
    assert behaviour == {key.replace("-", "_"): value for key, value in declared["ui-field-behaviour"].items()}
    assert MoodleHook.default_timeout == 60 and MoodleHook.default_deadline == 120


def press_test(api, body: dict) -> tuple[bool, str]:
    answer = api.post("/api/v2/connections/test", json={"connection_id": "moodle_form", "conn_type": "moodle",
                                                        **body})
    assert answer.status_code == 200, answer.text
    return answer.json()["status"], answer.json()["message"]



def form(site: MoodleStandIn, token: str = TOKEN) -> dict:
    return {"host": site.base_url, "password": token, "extra": json.dumps({"timeout": 5, "deadline": 10})}


def test_the_test_button_names_the_site_and_its_release(api):
    with MoodleStandIn(TOKEN) as site:
        assert press_test(api, form(site)) == (True, "Moodle stand-in, Moodle 4.5.6 (Build: 20250811)")
        assert [name for name, _ in site.calls] == [SITE_INFO]  # asked once


def test_the_test_button_says_the_token_is_bad(api):
    with MoodleStandIn(TOKEN) as site:
        status, message = press_test(api, form(site, token="not-the-token"))
    assert not status and message.startswith("Bad web service token: ") and "invalidtoken" in message
    assert "not-the-token" not in message


def test_the_test_button_says_web_services_are_off(api):
    with MoodleStandIn(TOKEN) as site:
        site.web_services_enabled = False
        status, message = press_test(api, form(site))
    assert not status and message.startswith("Web services are off: ")


def test_the_test_button_names_the_functions_the_service_lacks_and_their_flows(api):
    offered = [SITE_INFO, *(function.name for function in FUNCTIONS
                            if function.name not in ("core_user_delete_users", "enrol_manual_enrol_users"))]
    with MoodleStandIn(TOKEN, functions=offered) as site:
        status, message = press_test(api, form(site))
    assert not status
    assert message == ("Moodle stand-in, Moodle 4.5.6 (Build: 20250811): the token's external service lacks "
                       "core_user_delete_users (flows people); enrol_manual_enrol_users (flows ess, enrolments). "
                       "Add them under Site administration > Server > Web services > External services > Functions")


def test_an_optional_function_missing_does_not_fail_the_test(api):
    offered = [SITE_INFO, *(function.name for function in FUNCTIONS if not function.optional)]
    with MoodleStandIn(TOKEN, functions=offered) as site:
        assert press_test(api, form(site))[0] is True


def test_report_builder_functions_missing_do_not_fail_the_test(api):
    """They are asked for by the preflight of an integration that names its reports, not by every Connection."""
    offered = [SITE_INFO, *(function.name for function in FUNCTIONS
                            if not function.name.startswith("core_reportbuilder_"))]
    with MoodleStandIn(TOKEN, functions=offered) as site:
        assert press_test(api, form(site))[0] is True


def test_the_test_button_says_when_the_url_is_not_a_moodle_site(api, tmp_path):
    with MoodleStandIn(TOKEN) as site:
        status, message = press_test(api, {**form(site), "host": f"{site.base_url}/no/moodle/here"})
    assert not status and message.startswith("Not a Moodle site: ")


def test_an_http_connection_still_serves_the_hook(monkeypatch):
    """Connections made before the provider (type HTTP, the token in Password) keep working unchanged."""
    with MoodleStandIn(TOKEN) as site:
        monkeypatch.setenv("AIRFLOW_CONN_MOODLE_OLD", json.dumps({"conn_type": "http", "host": site.base_url,
                                                                  "password": TOKEN}))
        assert MoodleHook("moodle_old").test_connection() == (True, "Moodle stand-in, Moodle 4.5.6 (Build: 20250811)")


@pytest.mark.parametrize("method", ["run", "run_with_advanced_retry", "run_and_check"])
def test_the_http_hooks_generic_requests_are_refused_naming_call(method):
    with pytest.raises(NotImplementedError, match=r"MoodleHook\.call\(wsfunction, \*\*params\)"):
        getattr(MoodleHook("moodle_any"), method)({})
