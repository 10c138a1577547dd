-- Forget one run's report before it is written again (a re-run summary replaces it whole).
DELETE FROM sync_report_outcome WHERE integration_name = :integration_name AND run_id = :run_id;
DELETE FROM sync_report_task WHERE integration_name = :integration_name AND run_id = :run_id;
DELETE FROM sync_report_count WHERE integration_name = :integration_name AND run_id = :run_id;
DELETE FROM sync_report_run WHERE integration_name = :integration_name AND run_id = :run_id
