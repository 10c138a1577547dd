INSERT INTO school_person (external_id, role, first_name, last_name, email, username, status)
VALUES (:external_id, :role, :first_name, :last_name, :email, :username, :status)
