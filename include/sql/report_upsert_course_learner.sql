INSERT INTO sync_course_learner (integration_name, moodle_course_id, moodle_user_id, course_code, course_name,
                                 employee_number, learner_name, completed, completed_on, grade, result, passed,
                                 result_on, run_id, updated_at)
VALUES (:integration_name, :moodle_course_id, :moodle_user_id, :course_code, :course_name, :employee_number,
        :learner_name, :completed, :completed_on, :grade, :result, :passed, :result_on, :run_id, :updated_at)
ON CONFLICT (integration_name, moodle_course_id, moodle_user_id) DO UPDATE
   SET course_code = excluded.course_code,
       course_name = excluded.course_name,
       employee_number = excluded.employee_number,
       learner_name = excluded.learner_name,
       completed = excluded.completed,
       completed_on = excluded.completed_on,
       grade = excluded.grade,
       result = excluded.result,
       passed = excluded.passed,
       result_on = excluded.result_on,
       run_id = excluded.run_id,
       updated_at = excluded.updated_at
