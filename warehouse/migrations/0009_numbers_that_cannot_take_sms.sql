-- A contact's number that cannot receive SMS (a landline, by its numbering plan): kept as the
-- person's number, shown as such, and never sent an SMS. Numbers whose kind the plan does not
-- tell (US and Canadian numbers are "fixed line or mobile") are taken as able to.
ALTER TABLE contacts ADD COLUMN mobile_is_landline BOOLEAN NOT NULL DEFAULT false;
