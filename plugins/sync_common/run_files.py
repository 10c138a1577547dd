"""Working files of one DAG run: tasks hand data sets to each other as files, XComs carry paths and counts.

The files live under a base location: a local folder by default, owner-only because they hold
personal data, or object storage shared by workers on several machines (``s3://<conn_id>@<bucket>/<prefix>``,
read and written through Airflow's ``ObjectStoragePath`` with the credentials of that Connection).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from airflow.sdk import ObjectStoragePath

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

DATA_DIR_VARIABLE = "MOODLE_SYNC_DATA_DIR"

RunPath = Path | ObjectStoragePath


class Integration(Protocol):
    """What run data needs of an integration, whatever its source system."""

    key: str
    data_dir: str | None


def data_root(integration: Integration) -> RunPath:
    """Configured ``data_dir``, else $MOODLE_SYNC_DATA_DIR, else $AIRFLOW_HOME/moodle_sync_runs.

    A URL (``s3://aws_runs@bucket/prefix``) is object storage, which workers on several machines
    share; a local folder serves workers of one machine (or a shared volume).
    """
    configured = integration.data_dir or os.environ.get(DATA_DIR_VARIABLE)
    if not configured:
        return Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "moodle_sync_runs"
    scheme = urlsplit(configured).scheme
    if scheme == "file":
        return Path(urlsplit(configured).path)
    if len(scheme) > 1:  # not a Windows drive letter
        return ObjectStoragePath(configured)
    return Path(configured)


def run_directory(integration: Integration, run_id: str) -> RunPath:
    """The run's folder; a local one owner-only (0700) like the integration's folder above it: run
    data holds personal data (e-mails, ID numbers) that no other local account may read."""
    folder = data_root(integration) / integration.key / re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    if isinstance(folder, Path):
        folder.mkdir(parents=True, exist_ok=True)
        folder.parent.chmod(0o700)  # mkdir's mode is cut by the umask; chmod is not
    return owned_folder(folder)


def owned_folder(folder: RunPath) -> RunPath:
    """Make a folder of the run or inside it, owner-only where it is local (mkdir's mode is cut by the umask, chmod
    is not): every run folder is made here. Object storage needs no folders."""
    if isinstance(folder, Path):
        folder.mkdir(exist_ok=True)
        folder.chmod(0o700)
    return folder


def prune_old_runs(integration: Integration, keep_days: int, current: RunPath) -> int:
    """Delete run folders unchanged for ``keep_days``: they hold personal data (e-mails, ID numbers)."""
    cutoff = time.time() - keep_days * 86_400
    removed = 0
    for folder in (data_root(integration) / integration.key).iterdir():
        if folder.is_dir() and folder.name != current.name and _last_change(folder) < cutoff:
            if isinstance(folder, Path):
                shutil.rmtree(folder, ignore_errors=True)
            else:
                folder.fs.rm(folder.path, recursive=True)
            removed += 1
    return removed


def _last_change(folder: RunPath) -> float:
    if isinstance(folder, Path):
        return folder.stat().st_mtime
    return max((path.stat().st_mtime for path in folder.rglob("*") if path.is_file()), default=0.0)


def write_json(path: RunPath, content: Any) -> RunPath:
    """Compact JSON (no indent: the large files are read by tasks, not people), written whole or not at all."""
    return _write(path, json.dumps(content, separators=(",", ":"), default=str).encode("utf-8"))


def sorted_files(folder: RunPath, pattern: str) -> list[RunPath]:
    """The files of ``folder`` matching ``pattern``, in name order (a local folder or object storage alike)."""
    return sorted(folder.glob(pattern), key=lambda path: path.name)


def read_json(path: RunPath) -> Any:
    return json.loads(path.read_bytes())


def write_frame(path: RunPath, frame: pd.DataFrame) -> RunPath:
    return _write(path, frame.to_parquet(index=False))


def read_frame(path: RunPath, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A frame a step left, all its columns or only ``columns`` (a step reading a few columns of every employee
    need not hold the others)."""
    import pandas as pd  # here, not at the top: the DAG files import this module when parsed

    frame = pd.read_parquet(path if isinstance(path, Path) else io.BytesIO(path.read_bytes()),
                            columns=None if columns is None else list(columns))
    return frame.astype({column: "object" for column in frame.columns if column != "employee_id"})


def _write(path: RunPath, data: bytes) -> RunPath:
    """A task killed half-way never leaves half a file for its retry: an object appears whole
    when its upload ends; a local file is written aside, made owner-only (0600) and renamed (in its folder, made
    owner-only if it was missing: ``outcomes/``)."""
    if not isinstance(path, Path):
        path.write_bytes(data)
        return path
    if not path.parent.exists():
        owned_folder(path.parent)
    partial = path.with_suffix(path.suffix + ".part")
    partial.write_bytes(data)
    partial.chmod(0o600)
    partial.replace(path)
    return path
