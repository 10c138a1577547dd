-- Current offers of the compared employees no longer wanted (withdrawn), or of a course since renamed (renamed):
-- one pass over those offers (over all the integration's offers while it holds no fingerprint: everyone 1).
INSERT INTO ess_offer_change (employee_id, moodle_course_id, offer_change, course_code)
SELECT o.employee_id, o.moodle_course_id, CASE WHEN c.moodle_course_id IS NULL THEN 'withdrawn' ELSE 'renamed' END,
       COALESCE(c.course_code, o.course_code)
  FROM ess_offered_course o
  LEFT JOIN ess_wanted_employee e ON e.employee_id = o.employee_id
  LEFT JOIN ess_wanted_group_course g ON g.offer_group = e.offer_group AND g.moodle_course_id = o.moodle_course_id
  LEFT JOIN ess_wanted_course c ON c.moodle_course_id = g.moodle_course_id
 WHERE o.integration_name = :integration_name AND o.offered = 1
   AND (:everyone = 1 OR o.employee_id IN (SELECT employee_id FROM ess_compared_employee))
   AND (c.moodle_course_id IS NULL OR o.course_code <> c.course_code OR o.course_name <> c.course_name)
