-- Add a value to a PSIber picklist unless it is already there.
INSERT INTO picklist_item (picklist, item_value) VALUES (:picklist, :item_value)
ON CONFLICT (picklist, item_value) DO NOTHING
