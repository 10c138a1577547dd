-- Per course: linked employees enrolled, in progress (neither completed nor failed), completed, passed, failed.
SELECT moodle_course_id,
       MAX(course_code) AS course_code,
       MAX(course_name) AS course_name,
       COUNT(*) AS enrolled,
       SUM(CASE WHEN completed = 0 AND passed IS NULL THEN 1 ELSE 0 END) AS in_progress,
       SUM(completed) AS completed,
       SUM(CASE WHEN passed = 1 THEN 1 ELSE 0 END) AS passed,
       SUM(CASE WHEN passed = 0 THEN 1 ELSE 0 END) AS failed,
       MAX(updated_at) AS updated_at
  FROM sync_course_learner
 WHERE integration_name = :integration_name
 GROUP BY moodle_course_id
 ORDER BY MAX(course_code)
