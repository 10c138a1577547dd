-- The offer changes an employee is told of in the report, by employee and change, each change's courses in order.
SELECT employee_id, offer_change, course_code
  FROM ess_offer_change
 WHERE offer_change <> 'renamed'
 ORDER BY employee_id, offer_change, moodle_course_id
