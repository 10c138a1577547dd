-- Write a request's outcome once: a request already decided (a re-run) is left as it is.
UPDATE ess_enrolment_request
   SET state = :state,
       reason = :reason,
       decided_at = :now
 WHERE integration_name = :integration_name
   AND employee_id = :employee_id
   AND moodle_course_id = :moodle_course_id
   AND requested_at = :requested_at
   AND state = 'pending'
