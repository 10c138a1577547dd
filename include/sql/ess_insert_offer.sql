-- A course offered to an employee for the first time; a row already there (a re-run) is left as it is.
INSERT INTO ess_offered_course (integration_name, employee_id, moodle_course_id, course_code, course_name, offered,
                                first_offered_at, updated_at)
VALUES (:integration_name, :employee_id, :moodle_course_id, :course_code, :course_name, 1, :now, :now)
ON CONFLICT (integration_name, employee_id, moodle_course_id) DO NOTHING
