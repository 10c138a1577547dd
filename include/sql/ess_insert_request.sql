-- A request to enrol, as ESS files it (pending; approved_at set when PSIber has approved it already).
INSERT INTO ess_enrolment_request (integration_name, employee_id, moodle_course_id, requested_at, approved_at, state)
VALUES (:integration_name, :employee_id, :moodle_course_id, :requested_at, :approved_at, 'pending')
