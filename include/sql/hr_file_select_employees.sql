-- The employee numbers an HR export integration has seen, with the employee id each was given.
SELECT employee_id, employee_number
  FROM employee
 WHERE payroll_code = :payroll_code
 ORDER BY employee_id
