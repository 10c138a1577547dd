import os
import time
from pathlib import Path
from time import time as time_now

import pandas as pd
import pytest
from object_store import LocalObjectStore

from factories import GOOD, write
from psiber.config import load_integration
from sync_common import run_files
from sync_common.moodle_calls import counted, moodle_calls_of_run, record_moodle_calls
from sync_common.read_progress import ReadProgress
from sync_common.run_files import (
    owned_folder,
    prune_old_runs,
    read_frame,
    read_json,
    run_directory,
    write_frame,
    write_json,
)


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



def test_every_run_folder_is_made_owner_only_by_one_function():
    plugins = Path(run_files.__file__).resolve().parents[1]
    makers = sorted(str(path.relative_to(plugins)) for path in plugins.rglob("*.py") if ".mkdir(" in path.read_text())
    assert makers == ["sync_common/run_files.py"]  # the others make theirs through owned_folder

@pytest.fixture
def object_store(monkeypatch):
    """A local S3 server, and $MOODLE_SYNC_DATA_DIR pointing into its bucket through an Airflow Connection."""
    with LocalObjectStore("psiber-runs") as store:
        conn_id = f"runs_store_{store.port}"  # Airflow keeps one filesystem per connection id in a process
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", store.connection())
        monkeypatch.setenv("MOODLE_SYNC_DATA_DIR", f"s3://{conn_id}@psiber-runs/nightly")
        yield store


def test_run_data_in_object_storage_is_shared_through_the_bucket_only(object_store, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "machine-a"))
    settings = load_integration(write(tmp_path, "a.yaml", GOOD))
    folder = run_directory(settings, "scheduled__2026-11-23T00:00:00+00:00")
    write_json(folder / "learners.json", {"started": 1, "links": {"7": [1, "E007"]}})
    write_frame(folder / "employees.parquet", pd.DataFrame({"employee_id": [1], "employee_number": ["007"]}))
    with ReadProgress(folder, "grades-courses-1", stamp=1) as progress:
        progress.answer("course 1", lambda: {"totals": []})
    record_moodle_calls(folder, "read_course_grades", 0, 1)  # no hook counted: nothing written
    counted(_Calls(3))
    record_moodle_calls(folder, "read_course_grades", 1, 1)
    grades = owned_folder(folder / "grades")
    write_json(grades / "courses-1.json", {"grades": [], "outcomes": []})

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "machine-b"))  # another worker finds it all in the bucket
    again = run_directory(settings, "scheduled__2026-11-23T00:00:00+00:00")
    assert read_json(again / "learners.json")["links"] == {"7": [1, "E007"]}
    assert read_frame(again / "employees.parquet")["employee_number"].tolist() == ["007"]
    assert [path.name for path in (again / "grades").glob("*.json")] == ["courses-1.json"]
    assert moodle_calls_of_run(again) == 3
    with ReadProgress(again, "grades-courses-1", stamp=1) as progress:
        assert progress.answer("course 1", lambda: pytest.fail("asked Moodle again")) == {"totals": []}
        progress.discard()
    prefix = "nightly/driver_training/scheduled__2026-11-23T00_00_00_00_00/"
    assert object_store.keys() == [prefix + name for name in (
        "employees.parquet", "grades/courses-1.json", "learners.json", "moodle_calls/read_course_grades.1.1.json")]
    assert not list(tmp_path.glob("machine-*"))  # no local copy on either machine


def test_old_runs_in_object_storage_are_pruned(object_store, tmp_path, monkeypatch):
    settings = load_integration(write(tmp_path, "a.yaml", GOOD))
    old, current = (run_directory(settings, name) for name in ("old", "current"))
    for folder in (old, current):
        write_json(folder / "summary.json", {})
    assert prune_old_runs(settings, 30, current) == 0
    monkeypatch.setattr(run_files.time, "time", lambda: time_now() + 31 * 86_400)
    assert prune_old_runs(settings, 30, current) == 1
    assert object_store.keys() == ["nightly/driver_training/current/summary.json"]


class _Calls:
    def __init__(self, calls: int):
        self.calls_made = calls
