"""Moodle web services for Airflow: the ``moodle`` connection type, its hook and typed exceptions.

Kept free of imports so that Airflow's providers manager reads ``get_provider_info`` cheaply.
"""

__version__ = "1.0.0"
