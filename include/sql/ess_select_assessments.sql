-- Assignments and quizzes this integration has already seen, with the due date last announced.
SELECT modname, instance_id, moodle_course_id, name, due_at
  FROM ess_assessment
 WHERE integration_name = :integration_name
 ORDER BY modname, instance_id
