INSERT INTO ess_offer_fingerprint (integration_name, employee_id, fingerprint)
VALUES (:integration_name, :employee_id, :fingerprint)
ON CONFLICT (integration_name, employee_id) DO UPDATE SET fingerprint = excluded.fingerprint
