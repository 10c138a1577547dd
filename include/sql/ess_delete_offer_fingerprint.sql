DELETE FROM ess_offer_fingerprint WHERE integration_name = :integration_name AND employee_id = :employee_id
