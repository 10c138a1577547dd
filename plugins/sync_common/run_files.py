"""Working files of one DAG run: tasks hand data sets to each other as files, XComs carry paths and counts."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

DATA_DIR_VARIABLE = "PSIBER_MOODLE_DATA_DIR"


class Integration(Protocol):
    """What run data needs of an integration, whatever its source system."""

    key: str
    data_dir: str | None


def data_root(integration: Integration) -> Path:
    """Configured ``data_dir``, else $PSIBER_MOODLE_DATA_DIR, else $AIRFLOW_HOME/psiber_moodle_runs.

    With several Celery workers this must be a shared volume.
    """
    configured = integration.data_dir or os.environ.get(DATA_DIR_VARIABLE)
    if configured:
        return Path(configured)
    return Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "psiber_moodle_runs"


def run_directory(integration: Integration, run_id: str) -> Path:
    """The run's folder, owner-only (0700) like the integration's folder above it: run data holds
    personal data (e-mails, ID numbers) that no other local account may read."""
    folder = data_root(integration) / integration.key / re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    folder.mkdir(parents=True, exist_ok=True)
    for owned in (folder.parent, folder):
        owned.chmod(0o700)  # mkdir's mode is cut by the umask; chmod is not
    return folder


def prune_old_runs(integration: Integration, keep_days: int, current: Path) -> int:
    """Delete run directories older than ``keep_days``: they hold personal data (e-mails, ID numbers)."""
    cutoff = time.time() - keep_days * 86_400
    removed = 0
    for folder in (data_root(integration) / integration.key).iterdir():
        if folder.is_dir() and folder != current and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def write_json(path: Path, content: Any) -> Path:
    """Write atomically, so a task killed half-way never leaves half a file for its retry."""
    partial = path.with_suffix(path.suffix + ".part")
    partial.write_text(json.dumps(content, indent=1, default=str), encoding="utf-8")
    return _publish(partial, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write_frame(path: Path, frame: pd.DataFrame) -> Path:
    partial = path.with_suffix(path.suffix + ".part")
    frame.to_parquet(partial, index=False)
    return _publish(partial, path)


def _publish(partial: Path, path: Path) -> Path:
    """Make a finished file owner-only (0600) and put it in place in one rename."""
    partial.chmod(0o600)
    partial.replace(path)
    return path


def read_frame(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    return frame.astype({column: "object" for column in frame.columns if column != "employee_id"})
