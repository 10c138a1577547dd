"""What Airflow's providers manager reads of this package (entry point ``apache_airflow_provider``).

The connection form is declared here, as Airflow 3.2+ reads it (``conn-fields``, ``ui-field-behaviour``)
without importing the hook; the hook's ``get_connection_form_widgets`` and ``get_ui_field_behaviour`` build
the same form from these constants for older Airflow versions.
"""

from __future__ import annotations

from typing import Any

PACKAGE_NAME = "airflow-provider-moodle-lms"
CONN_TYPE = "moodle"
HOOK_NAME = "Moodle"
HOOK_CLASS = "moodle_provider.hooks.moodle.MoodleHook"

DEFAULT_TIMEOUT = 60
DEFAULT_DEADLINE = 120

# Extra keys shown as form fields: (label, description, default)
EXTRA_FIELDS = {
    "timeout": ("Timeout (seconds)", "How long the site may stay silent: to connect, or between two reads of an "
                "answer.", DEFAULT_TIMEOUT),
    "deadline": ("Deadline (seconds)", "How long one request may take in all, connecting and the whole answer "
                 "included, so that a site trickling its answer cannot hold a task.", DEFAULT_DEADLINE),
}
HIDDEN_FIELDS = ("login", "schema", "port")
RELABELING = {"host": "Moodle site URL", "password": "Web service token"}
PLACEHOLDERS = {"host": "https://moodle.example.com"}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": PACKAGE_NAME,
        "name": "Moodle LMS",
        "description": "Moodle LMS web services (REST) for Airflow: a connection type with its own form and "
                       "Test button, and a hook with typed errors.",
        "integrations": [{"integration-name": "Moodle LMS", "external-doc-url": "https://moodledev.io/docs/apis/subsystems/external",
                          "tags": ["software"]}],
        "hooks": [{"integration-name": "Moodle LMS", "python-modules": ["moodle_provider.hooks.moodle"]}],
        "connection-types": [{
            "connection-type": CONN_TYPE,
            "hook-class-name": HOOK_CLASS,
            "hook-name": HOOK_NAME,
            "conn-fields": {
                name: {"label": label, "description": description,
                       "schema": {"type": ["integer", "null"], "default": default, "minimum": 1}}
                for name, (label, description, default) in EXTRA_FIELDS.items()
            },
            "ui-field-behaviour": {"hidden-fields": list(HIDDEN_FIELDS), "relabeling": dict(RELABELING),
                                   "placeholders": dict(PLACEHOLDERS)},
        }],
    }
