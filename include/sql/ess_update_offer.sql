-- An offer that starts again, ends, or whose course was renamed; first_offered_at stays.
UPDATE ess_offered_course
   SET offered = :offered,
       course_code = :course_code,
       course_name = :course_name,
       updated_at = :now
 WHERE integration_name = :integration_name
   AND employee_id = :employee_id
   AND moodle_course_id = :moodle_course_id
