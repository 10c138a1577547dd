INSERT INTO school_class (external_id, code, name, group_type, sms_controlled, provisioning_override, academic_year)
VALUES (:external_id, :code, :name, :group_type, :sms_controlled, :provisioning_override, :academic_year)
