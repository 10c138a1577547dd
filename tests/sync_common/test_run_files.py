import os
import time

from factories import GOOD, write
from psiber.config import load_integration
from sync_common.run_files import prune_old_runs, run_directory


def test_old_run_directories_are_pruned_and_recent_ones_kept(tmp_path):
    settings = load_integration(write(tmp_path, "a.yaml", GOOD + f"data_dir: {tmp_path / 'runs'}\n"))
    old, recent, current = (run_directory(settings, name) for name in ("old", "recent", "current"))
    month_ago = time.time() - 31 * 86_400
    os.utime(old, (month_ago, month_ago))
    os.utime(current, (month_ago, month_ago))
    assert prune_old_runs(settings, 30, current) == 1
    assert not old.exists() and recent.exists() and current.exists()
