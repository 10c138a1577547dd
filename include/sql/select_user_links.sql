-- Employees already linked to a Moodle user by this integration.
SELECT l.employee_id,
       e.employee_number,
       l.moodle_user_id,
       l.moodle_username
  FROM moodle_user_link l
  JOIN employee e ON e.employee_id = l.employee_id
 WHERE l.integration_name = :integration_name
 ORDER BY l.employee_id
