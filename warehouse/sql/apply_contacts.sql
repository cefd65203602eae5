-- Carry out planned_contacts (plan_contacts.sql): update the matched contacts, keeping what
-- they had where a cell is empty. With $listed false the people are messaged without becoming
-- contacts: a listed contact they match is neither changed nor hidden. New people are inserted
-- by the caller, which needs their ids.
UPDATE contacts SET
    first_name = coalesce(planned.first_name, contacts.first_name),
    last_name = coalesce(planned.last_name, contacts.last_name),
    email = coalesce(planned.email, contacts.email),
    mobile = coalesce(planned.mobile, contacts.mobile),
    mobile_is_landline = CASE WHEN planned.mobile IS NULL THEN contacts.mobile_is_landline
                              ELSE planned.mobile_is_landline END,
    is_listed = contacts.is_listed OR $listed,
    updated_at = current_timestamp
FROM planned_contacts AS planned
WHERE contacts.contact_id = planned.contact_id
  AND planned.action = 'update'
  AND ($listed OR NOT contacts.is_listed);
