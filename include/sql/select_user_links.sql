-- Employees linked to a Moodle user by this integration, also those whose PSIber record was deleted
-- (employee_exists 0): their Moodle account must not drop out of sight.
SELECT l.employee_id,
       e.employee_number,
       CASE WHEN e.employee_id IS NULL THEN 0 ELSE 1 END AS employee_exists,
       l.moodle_user_id,
       l.moodle_username,
       l.synced_fingerprint,
       l.source_fingerprint
  FROM moodle_user_link l
  LEFT JOIN employee e ON e.employee_id = l.employee_id
 WHERE l.integration_name = :integration_name
 ORDER BY l.employee_id
