-- Wanted offers of the compared employees without a current row: never offered (offered), or ended
-- (offered_again). Each of their wanted offers is looked up.
INSERT INTO ess_offer_change (employee_id, moodle_course_id, offer_change, course_code)
SELECT e.employee_id, c.moodle_course_id, CASE WHEN o.offered IS NULL THEN 'offered' ELSE 'offered_again' END,
       c.course_code
  FROM ess_wanted_employee e
  JOIN ess_wanted_group_course g ON g.offer_group = e.offer_group
  JOIN ess_wanted_course c ON c.moodle_course_id = g.moodle_course_id
  LEFT JOIN ess_offered_course o ON o.integration_name = :integration_name AND o.employee_id = e.employee_id
                                AND o.moodle_course_id = c.moodle_course_id
 WHERE o.offered IS NULL OR o.offered = 0
