INSERT INTO employee (employee_id, employee_number, payroll_code, first_name, surname, email, id_number,
                      passport_number, employment_status, employment_type, gender, disability, engaged_on,
                      terminated_on)
VALUES (:employee_id, :employee_number, :payroll_code, :first_name, :surname, :email, :id_number,
        :passport_number, :employment_status, :employment_type, :gender, :disability, :engaged_on,
        :terminated_on)
