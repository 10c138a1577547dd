-- The employee's latest Moodle result for a course; a completion captured by hand in PSIber is never changed.
INSERT INTO course_completion (employee_id, course_code, completed_on, result, source, updated_at)
VALUES (:employee_id, :course_code, :completed_on, :result, 'moodle', :updated_at)
ON CONFLICT (employee_id, course_code) DO UPDATE
   SET completed_on = excluded.completed_on,
       result = excluded.result,
       updated_at = excluded.updated_at
 WHERE course_completion.source = 'moodle'
   AND (course_completion.completed_on <> excluded.completed_on OR course_completion.result <> excluded.result)
