-- Upsert incoming_contacts (one row per person, already normalised) into contacts: a row matches
-- an existing contact by email, else by mobile; empty cells keep what the contact had. With
-- $listed false the people are messaged without becoming contacts: new ones are not listed,
-- and a listed contact they match is neither changed nor hidden.
CREATE OR REPLACE TEMP TABLE matched_contacts AS
WITH
by_email AS (SELECT email, min(contact_id) AS contact_id FROM contacts GROUP BY email),
by_mobile AS (SELECT mobile, min(contact_id) AS contact_id FROM contacts GROUP BY mobile),

matched AS (
    SELECT incoming.*, coalesce(by_email.contact_id, by_mobile.contact_id) AS contact_id
    FROM incoming_contacts AS incoming
    LEFT JOIN by_email ON by_email.email = incoming.email
    LEFT JOIN by_mobile ON by_mobile.mobile = incoming.mobile
)

SELECT *, contact_id IS NULL AS is_new FROM matched;

UPDATE contacts SET
    first_name = coalesce(matched.first_name, contacts.first_name),
    last_name = coalesce(matched.last_name, contacts.last_name),
    email = coalesce(matched.email, contacts.email),
    mobile = coalesce(matched.mobile, contacts.mobile),
    is_listed = contacts.is_listed OR $listed,
    updated_at = current_timestamp
FROM matched_contacts AS matched
WHERE contacts.contact_id = matched.contact_id AND ($listed OR NOT contacts.is_listed);

INSERT INTO contacts (first_name, last_name, email, mobile, is_listed)
SELECT first_name, last_name, email, mobile, $listed
FROM matched_contacts
WHERE is_new
ORDER BY row;
