INSERT INTO sync_report_outcome (integration_name, run_id, position, flow, action, problem, record, reason, owner,
                                 changed_fields, name)
VALUES (:integration_name, :run_id, :position, :flow, :action, :problem, :record, :reason, :owner, :changed_fields,
        :name)
