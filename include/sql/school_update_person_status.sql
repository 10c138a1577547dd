UPDATE school_person SET status = :status WHERE external_id = :external_id
