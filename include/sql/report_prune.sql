-- Retention: the reports of runs that finished before the cutoff (keep_reports_days) are deleted.
DELETE FROM sync_report_outcome
 WHERE integration_name = :integration_name
   AND run_id IN (SELECT run_id FROM sync_report_run
                   WHERE integration_name = :integration_name AND finished_at < :cutoff);
DELETE FROM sync_report_task
 WHERE integration_name = :integration_name
   AND run_id IN (SELECT run_id FROM sync_report_run
                   WHERE integration_name = :integration_name AND finished_at < :cutoff);
DELETE FROM sync_report_failure
 WHERE integration_name = :integration_name
   AND run_id IN (SELECT run_id FROM sync_report_run
                   WHERE integration_name = :integration_name AND finished_at < :cutoff);
DELETE FROM sync_report_try
 WHERE integration_name = :integration_name
   AND run_id IN (SELECT run_id FROM sync_report_run
                   WHERE integration_name = :integration_name AND finished_at < :cutoff);
DELETE FROM sync_report_count
 WHERE integration_name = :integration_name
   AND run_id IN (SELECT run_id FROM sync_report_run
                   WHERE integration_name = :integration_name AND finished_at < :cutoff);
DELETE FROM sync_report_run WHERE integration_name = :integration_name AND finished_at < :cutoff
