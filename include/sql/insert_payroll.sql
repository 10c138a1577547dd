INSERT INTO payroll (payroll_code, payroll_name, uif_ref, sdl_ref)
VALUES (:payroll_code, :payroll_name, :uif_ref, :sdl_ref)
