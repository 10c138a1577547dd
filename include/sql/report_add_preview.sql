-- Report tables made before runs could be previews (preview=true: nothing written to Moodle) get the column.
ALTER TABLE sync_report_run ADD COLUMN preview INTEGER NOT NULL DEFAULT 0
