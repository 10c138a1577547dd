-- One attempt per distinct Moodle result: the same result synced again hits the same key and adds nothing.
INSERT INTO course_attempt (attempt_key, employee_id, course_code, attempt_date, result, grade, source, recorded_at)
VALUES (:attempt_key, :employee_id, :course_code, :attempt_date, :result, :grade, 'moodle', :recorded_at)
ON CONFLICT (attempt_key) DO NOTHING
