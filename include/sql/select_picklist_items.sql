SELECT picklist, item_value FROM picklist_item ORDER BY picklist, item_value
