-- Report tables made before targeted runs (sync_only: the record keys the run was triggered for) get the column.
ALTER TABLE sync_report_run ADD COLUMN targeted TEXT NOT NULL DEFAULT ''
