-- Employees of the integration's payrolls, with the payroll elements that can be matched to Moodle.
-- all_payrolls is 1 to take every payroll; otherwise the payrolls parameter lists the payroll codes.
-- Employees on a payroll PSIber does not have come too (known_payroll_code null): no integration can tell
-- whether it covers them, so each reports them for HR to fix rather than dropping them unseen.
SELECT e.employee_id,
       e.employee_number,
       e.payroll_code,
       p.payroll_code AS known_payroll_code,
       p.payroll_name,
       p.uif_ref,
       p.sdl_ref,
       e.first_name,
       e.surname,
       e.email,
       e.id_number,
       e.passport_number,
       e.employment_status,
       e.employment_type,
       e.gender,
       e.disability
  FROM employee e
  LEFT JOIN payroll p ON p.payroll_code = e.payroll_code
 WHERE :all_payrolls = 1 OR e.payroll_code IN :payrolls OR p.payroll_code IS NULL
 ORDER BY e.employee_id
