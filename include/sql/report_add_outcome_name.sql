-- Report tables made before records had names beside their keys get the column.
ALTER TABLE sync_report_outcome ADD COLUMN name VARCHAR(250) NOT NULL DEFAULT ''
