-- An HR export integration's employees stand in PSIber's tables as one payroll of their own (its code made of the
-- integration's key); made the first time the export is read.
INSERT INTO payroll (payroll_code, payroll_name)
VALUES (:payroll_code, :payroll_name)
ON CONFLICT (payroll_code) DO NOTHING
