-- Each employee's offers as the last refresh wrote them (ess_offer_fingerprint).
SELECT employee_id, fingerprint
  FROM ess_offer_fingerprint
 WHERE integration_name = :integration_name
