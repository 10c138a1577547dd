-- Forget one try of a run before its summary is written again (summarize_run itself cleared); earlier tries stay.
DELETE FROM sync_report_failure
 WHERE integration_name = :integration_name AND run_id = :run_id AND try_number = :try_number;
DELETE FROM sync_report_try WHERE integration_name = :integration_name AND run_id = :run_id AND try_number = :try_number
