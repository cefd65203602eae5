-- The contact of every row the last import in this connection used (all but conflicts), in
-- the file's order: the matched contact, or the one just created with the row's address.
SELECT coalesce(planned.contact_id, by_email.contact_id, by_mobile.contact_id) AS contact_id
FROM planned_contacts AS planned
LEFT JOIN contacts AS by_email
    ON planned.contact_id IS NULL AND by_email.email = planned.email
LEFT JOIN contacts AS by_mobile
    ON planned.contact_id IS NULL AND planned.email IS NULL AND by_mobile.mobile = planned.mobile
WHERE planned.action <> 'conflict'
ORDER BY planned.row
