-- What importing incoming_contacts (one row per person, already normalised and merged within
-- the file) would do to contacts, row by row, before anything is written:
--   new       no contact has this email or mobile;
--   update    one contact has them: empty cells keep what it had;
--   conflict  the row would take another contact's address: its email is one contact's and its
--             mobile another's, or its mobile is a contact's who has a different email. Such a
--             row changes nothing and is reported (an import never overwrites without saying so).
-- The old_* columns are the matched contact's values, for the report of what changes.
CREATE OR REPLACE TEMP TABLE planned_contacts AS
WITH
by_email AS (
    SELECT email, min(contact_id) AS contact_id FROM contacts WHERE email IS NOT NULL GROUP BY email
),
by_mobile AS (
    SELECT mobile, min(contact_id) AS contact_id FROM contacts WHERE mobile IS NOT NULL GROUP BY mobile
),
matched AS (
    SELECT incoming.*, by_email.contact_id AS email_owner, by_mobile.contact_id AS mobile_owner
    FROM incoming_contacts AS incoming
    LEFT JOIN by_email ON by_email.email = incoming.email
    LEFT JOIN by_mobile ON by_mobile.mobile = incoming.mobile
)
SELECT
    matched.row, matched.first_name, matched.last_name, matched.email, matched.mobile,
    matched.mobile_is_landline,
    coalesce(email_owner, mobile_owner) AS contact_id,
    CASE
        WHEN email_owner <> mobile_owner THEN 'conflict'
        WHEN email_owner IS NULL AND matched.email IS NOT NULL AND owner.email IS NOT NULL
            THEN 'conflict'
        WHEN owner.contact_id IS NULL THEN 'new'
        ELSE 'update'
    END AS action,
    email_owner, mobile_owner,
    owner.first_name AS old_first_name, owner.last_name AS old_last_name,
    owner.email AS old_email, owner.mobile AS old_mobile, owner.is_listed AS old_is_listed
FROM matched
LEFT JOIN contacts AS owner ON owner.contact_id = coalesce(email_owner, mobile_owner);
