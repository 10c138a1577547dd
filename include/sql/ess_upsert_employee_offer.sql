-- An employee's offers now and the courses ever offered to them; first_offered_at stays as first written.
INSERT INTO ess_employee_offer (integration_name, employee_id, offer_group, offered_ever, first_offered_at, updated_at)
VALUES (:integration_name, :employee_id, :offer_group, :offered_ever, :now, :now)
ON CONFLICT (integration_name, employee_id) DO UPDATE
   SET offer_group = excluded.offer_group, offered_ever = excluded.offered_ever, updated_at = excluded.updated_at
