"""Moodle web services for Airflow: the ``moodle`` connection type, its hook and typed exceptions, and the Moodle
functions the integrations call. Its version is the distribution's (plugins/moodle/pyproject.toml).

Kept free of imports so that Airflow's providers manager reads ``get_provider_info`` cheaply.
"""
