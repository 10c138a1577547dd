-- Every course the latest run that read results saw, with why its learners are not counted ('' when they are).
SELECT moodle_course_id, course_code, course_name, not_counted, read_at
  FROM sync_course
 WHERE integration_name = :integration_name
