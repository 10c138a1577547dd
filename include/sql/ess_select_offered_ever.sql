-- The course ids of the named sets of courses ever offered.
SELECT course_set, moodle_course_id
  FROM ess_offered_ever
 WHERE integration_name = :integration_name AND course_set IN :course_sets
