-- The first employee id not yet given.
SELECT COALESCE(MAX(employee_id), 0) + 1 AS next_id
  FROM employee
