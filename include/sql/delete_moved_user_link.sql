-- A Moodle user now linked to another employee loses its old link first (one user, one employee).
DELETE FROM moodle_user_link
 WHERE integration_name = :integration_name
   AND moodle_user_id = :moodle_user_id
   AND employee_id <> :employee_id
