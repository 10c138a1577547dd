INSERT INTO ess_compared_employee (employee_id) VALUES (:employee_id)
