-- An employee's link to a Moodle account an administrator deleted: the employee is matched again.
DELETE FROM moodle_user_link WHERE integration_name = :integration_name AND employee_id = :employee_id
