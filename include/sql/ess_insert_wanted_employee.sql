INSERT INTO ess_wanted_employee (employee_id, offer_group) VALUES (:employee_id, :offer_group)
