-- Requests still waiting for the flow, oldest first, with the employee number support searches by.
SELECT r.employee_id,
       e.employee_number,
       r.moodle_course_id,
       r.requested_at,
       r.approved_at
  FROM ess_enrolment_request r
  LEFT JOIN employee e ON e.employee_id = r.employee_id
 WHERE r.integration_name = :integration_name
   AND r.state = 'pending'
 ORDER BY r.requested_at, r.employee_id, r.moodle_course_id
