-- The contacts that the last contact import in this connection created or updated.
SELECT contact_id FROM matched_contacts WHERE contact_id IS NOT NULL
UNION ALL
SELECT contacts.contact_id
FROM matched_contacts JOIN contacts USING (email)
WHERE matched_contacts.is_new AND matched_contacts.email IS NOT NULL
UNION ALL
SELECT contacts.contact_id
FROM matched_contacts JOIN contacts USING (mobile)
WHERE matched_contacts.is_new AND matched_contacts.email IS NULL
