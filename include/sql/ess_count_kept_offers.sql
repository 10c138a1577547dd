-- Current offers still wanted (after ess_find_ended_or_renamed_offers.sql): as many as the wanted offers when
-- none starts.
SELECT (SELECT COUNT(*) FROM ess_offered_course WHERE integration_name = :integration_name AND offered = 1)
     - (SELECT COUNT(*) FROM ess_offer_change WHERE offer_change = 'withdrawn')
