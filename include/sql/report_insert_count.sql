INSERT INTO sync_report_count (integration_name, run_id, flow, action, position, records)
VALUES (:integration_name, :run_id, :flow, :action, :position, :records)
