SELECT synced_until FROM sync_watermark WHERE integration_name = :integration_name AND flow = :flow
