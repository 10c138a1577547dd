-- The offer groups and sets of courses ever offered that no employee holds any more (after a refresh's writes).
-- Statements are separated by ";" at line end.
DELETE FROM ess_offer_group
 WHERE integration_name = :integration_name
   AND offer_group NOT IN (SELECT offer_group FROM ess_employee_offer
                            WHERE integration_name = :integration_name AND offer_group IS NOT NULL);

DELETE FROM ess_offered_ever
 WHERE integration_name = :integration_name
   AND course_set NOT IN (SELECT offered_ever FROM ess_employee_offer WHERE integration_name = :integration_name);
