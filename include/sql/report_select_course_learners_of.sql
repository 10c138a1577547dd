-- The learner rows of the given courses and users, for a run to merge what it read into.
SELECT moodle_course_id, moodle_user_id, course_code, course_name, employee_number, learner_name, completed,
       completed_on, grade, result, passed, result_on, run_id
  FROM sync_course_learner
 WHERE integration_name = :integration_name
   AND (moodle_course_id IN :course_ids OR moodle_user_id IN :user_ids)
