-- Moodle changes up to this time (Unix seconds) are in PSIber; the next run asks only about later ones.
INSERT INTO sync_watermark (integration_name, flow, synced_until) VALUES (:integration_name, :flow, :synced_until)
ON CONFLICT (integration_name, flow) DO UPDATE SET synced_until = excluded.synced_until
