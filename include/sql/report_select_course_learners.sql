-- One course's learners (employee number, name, completion, grade, result and its date).
SELECT moodle_user_id, course_code, course_name, employee_number, learner_name, completed, completed_on, grade,
       result, passed, result_on, updated_at
  FROM sync_course_learner
 WHERE integration_name = :integration_name AND moodle_course_id = :moodle_course_id
 ORDER BY employee_number
