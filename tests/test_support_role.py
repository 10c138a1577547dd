"""The support role (the README's recipe, the demo's ``support`` user) against Airflow's own API routes and FAB's
auth manager: trigger and clear runs of their integrations, nothing on another DAG, never delete.

Each route's check is read from the route itself (the ``requires_access_dag`` it depends on), and FAB's auth manager
decides it for a user holding exactly the role's permissions, so a change in either shows here.
"""

from __future__ import annotations

import inspect
import re
import shlex
import sys
from pathlib import Path

import pytest
from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
from airflow.api_fastapi.core_api.routes.public import dag_run, dags, task_instances
from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager
from airflow.providers.fab.auth_manager.models import User

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from demo_airflow import DAG_ID, SCHOOL_DAG_ID, SUPPORT_PERMISSIONS  # noqa: E402 - a script, not a package

OTHER_DAG = "psiber_moodle_payroll_two"
CAN = {"trigger_dag_run", "clear_dag_run", "post_clear_task_instances", "patch_task_instance", "patch_dag"}
CANNOT = {"delete_dag_run", "delete_task_instance", "delete_dag"}


def dag_check(endpoint: str) -> tuple[str, object]:
    """(method, access entity) the route's ``requires_access_dag`` asks of the auth manager."""
    for router in (dag_run.dag_run_router, task_instances.task_instances_router, dags.dags_router):
        for route in router.routes:
            if route.endpoint.__name__ != endpoint:
                continue
            for dependency in route.dependencies:
                if dependency.dependency.__qualname__.startswith("requires_access_dag."):
                    found = inspect.getclosurevars(dependency.dependency).nonlocals
                    return found["method"], found["access_entity"]
    raise LookupError(endpoint)


def support_user(permissions) -> User:
    user = User()
    user._perms = {(action, resource) for resources, actions in permissions for resource in resources
                   for action in actions}
    return user


def allowed(user: User, endpoint: str, dag_id: str) -> bool:
    method, entity = dag_check(endpoint)
    return FabAuthManager().is_authorized_dag(method=method, user=user, access_entity=entity,
                                              details=DagDetails(id=dag_id))


@pytest.mark.parametrize("endpoint", sorted(CAN | CANNOT))
def test_support_triggers_and_clears_its_integrations_only_and_deletes_nothing(endpoint):
    user = support_user(SUPPORT_PERMISSIONS)
    for dag_id in (DAG_ID, SCHOOL_DAG_ID):
        assert allowed(user, endpoint, dag_id) == (endpoint in CAN), (endpoint, dag_id)
    assert not allowed(user, endpoint, OTHER_DAG)


def test_support_reads_its_integrations_runs_tasks_and_logs():
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity

    user = support_user(SUPPORT_PERMISSIONS)
    for entity in (DagAccessEntity.RUN, DagAccessEntity.TASK_INSTANCE, DagAccessEntity.TASK_LOGS):
        assert FabAuthManager().is_authorized_dag(method="GET", user=user, access_entity=entity,
                                                  details=DagDetails(id=DAG_ID))
        assert not FabAuthManager().is_authorized_dag(method="GET", user=user, access_entity=entity,
                                                      details=DagDetails(id=OTHER_DAG))


def readme_recipe() -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    """The ``airflow roles add-perms Support -r ... -a ...`` lines of the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    recipe = []
    for line in re.findall(r"^airflow roles add-perms Support (.+)$", text, re.MULTILINE):
        words = shlex.split(line)
        recipe.append((tuple(words[1:words.index("-a")]), tuple(words[words.index("-a") + 1:])))
    return tuple(recipe)


def test_the_readme_recipe_is_the_demos_for_one_integration():
    demo = support_user(SUPPORT_PERMISSIONS)._perms - {(action, f"DAG:{SCHOOL_DAG_ID}")
                                                       for action in ("can_read", "can_edit")}
    assert support_user(readme_recipe())._perms == demo
