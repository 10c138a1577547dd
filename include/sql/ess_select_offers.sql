-- Every offer this integration has made, current (offered 1) or ended (offered 0).
SELECT employee_id, moodle_course_id, course_code, course_name, offered
  FROM ess_offered_course
 WHERE integration_name = :integration_name
 ORDER BY employee_id, moodle_course_id
