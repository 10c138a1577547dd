INSERT INTO picklist_item (picklist, item_value) VALUES (:picklist, :item_value)
