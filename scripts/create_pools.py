"""Create (or resize) the Airflow pools the integration files name, so that no one makes them by hand.

``results.moodle_pool`` bounds the Moodle reads of every run that shares it; its slots are the largest
``results.max_parallel_reads`` of the integrations naming it. Run it where ``airflow db migrate`` runs
(docker-compose's airflow-init does), after every change to the integration files:

    .venv/bin/python scripts/create_pools.py [include/integrations]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wanted_pools(folder: Path) -> dict[str, int]:
    """Pool name → slots, from the good integration files of ``folder``."""
    from psiber.config import load_integrations

    integrations, _ = load_integrations(folder)
    pools: dict[str, int] = {}
    for integration in integrations.values():
        if integration.results.moodle_pool:
            name = integration.results.moodle_pool
            pools[name] = max(pools.get(name, 0), integration.results.max_parallel_reads)
    return pools


def main() -> None:
    sys.path[:0] = [str(ROOT / "plugins")]
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(
        os.environ.get("PSIBER_MOODLE_INTEGRATIONS", ROOT / "include" / "integrations"))
    from airflow.models.pool import Pool

    for name, slots in wanted_pools(folder).items():
        Pool.create_or_update_pool(name, slots, "Moodle reads of the PSIber integrations (scripts/create_pools.py)",
                                   include_deferred=False)
        print(f"pool {name}: {slots} slots")


if __name__ == "__main__":
    main()
