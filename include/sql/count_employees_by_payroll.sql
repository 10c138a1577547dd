-- How many employees each payroll code has, payrolls PSIber knows first: what an integration's scope leaves out
-- is counted, and a configured payroll PSIber lacks is seen.
SELECT p.payroll_code, COUNT(e.employee_id) AS employees
  FROM payroll p
  LEFT JOIN employee e ON e.payroll_code = p.payroll_code
 GROUP BY p.payroll_code
 ORDER BY p.payroll_code
