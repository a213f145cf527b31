-- Lookups of the link step and the rules.
CREATE INDEX finance_units_by_name ON finance_units (name_norm);
CREATE INDEX audit_findings_by_name ON audit_findings (unit_name_norm);
