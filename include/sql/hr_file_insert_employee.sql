-- An employee number seen for the first time in an HR export: it gets an employee id, which the links and
-- refusals of PSIber's tables key on. Only the number is kept: the export itself holds the employee's data.
INSERT INTO employee (employee_id, employee_number, payroll_code, employment_status)
VALUES (:employee_id, :employee_number, :payroll_code, 'in HR export')
