-- Every employee the integration has offered courses to: their group now (NULL: none now) and the courses ever
-- offered to them, both by fingerprint (ess_schema.sql).
SELECT employee_id, offer_group, offered_ever
  FROM ess_employee_offer
 WHERE integration_name = :integration_name
