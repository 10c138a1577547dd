-- Write the offer changes found (ess_find_*_offers.sql): each statement touches the changed offers
-- only. A course offered for the first time is announced once (the notification's key is kept); an offer
-- that starts again, ends, or whose course was renamed keeps its first_offered_at. Statements are
-- separated by ";" at line end.
INSERT INTO ess_notification (integration_name, employee_id, notification_key, kind, moodle_course_id, course_code,
                              assessment, text, created_at, is_read)
SELECT :integration_name, ch.employee_id, c.notification_key, c.notification_kind, c.moodle_course_id, c.course_code,
       NULL, c.notification_text, :now, 0
  FROM ess_offer_change ch
  JOIN ess_wanted_course c ON c.moodle_course_id = ch.moodle_course_id
 WHERE ch.offer_change = 'offered'
ON CONFLICT (integration_name, employee_id, notification_key) DO NOTHING;

INSERT INTO ess_offered_course (integration_name, employee_id, moodle_course_id, course_code, course_name, offered,
                                first_offered_at, updated_at)
SELECT :integration_name, ch.employee_id, c.moodle_course_id, c.course_code, c.course_name, 1, :now, :now
  FROM ess_offer_change ch
  JOIN ess_wanted_course c ON c.moodle_course_id = ch.moodle_course_id
 WHERE ch.offer_change = 'offered'
ON CONFLICT (integration_name, employee_id, moodle_course_id) DO NOTHING;

UPDATE ess_offered_course
   SET offered = 1,
       course_code = (SELECT c.course_code FROM ess_wanted_course c
                       WHERE c.moodle_course_id = ess_offered_course.moodle_course_id),
       course_name = (SELECT c.course_name FROM ess_wanted_course c
                       WHERE c.moodle_course_id = ess_offered_course.moodle_course_id),
       updated_at = :now
 WHERE integration_name = :integration_name
   AND (employee_id, moodle_course_id) IN (SELECT employee_id, moodle_course_id FROM ess_offer_change
                                            WHERE offer_change IN ('offered_again', 'renamed'));

UPDATE ess_offered_course
   SET offered = 0, updated_at = :now
 WHERE integration_name = :integration_name
   AND (employee_id, moodle_course_id) IN (SELECT employee_id, moodle_course_id FROM ess_offer_change
                                            WHERE offer_change = 'withdrawn');
