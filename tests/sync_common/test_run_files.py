import os
import time

import pandas as pd

from factories import GOOD, write
from psiber.config import load_integration
from sync_common.run_files import prune_old_runs, run_directory, write_frame, write_json


def test_old_run_directories_are_pruned_and_recent_ones_kept(tmp_path):
    settings = load_integration(write(tmp_path, "a.yaml", GOOD + f"data_dir: {tmp_path / 'runs'}\n"))
    old, recent, current = (run_directory(settings, name) for name in ("old", "recent", "current"))
    month_ago = time.time() - 31 * 86_400
    os.utime(old, (month_ago, month_ago))
    os.utime(current, (month_ago, month_ago))
    assert prune_old_runs(settings, 30, current) == 1
    assert not old.exists() and recent.exists() and current.exists()


def test_run_data_is_owner_only_whatever_the_umask(tmp_path):
    settings = load_integration(write(tmp_path, "a.yaml", GOOD + f"data_dir: {tmp_path / 'runs'}\n"))
    previous = os.umask(0o022)
    try:
        folder = run_directory(settings, "manual__2026-11-23")
        written = [write_json(folder / "a.json", {"x": 1}), write_frame(folder / "b.parquet", pd.DataFrame({"x": [1]}))]
    finally:
        os.umask(previous)
    assert [oct(p.stat().st_mode & 0o777) for p in (folder.parent, folder)] == ["0o700", "0o700"]
    assert [oct(p.stat().st_mode & 0o777) for p in written] == ["0o600", "0o600"]
