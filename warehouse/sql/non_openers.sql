-- The contacts to resend a send-out's email to: not opened, and nothing since that says no.
SELECT messages.contact_id
FROM messages
JOIN message_status AS status USING (message_id)
WHERE messages.sendout_id = $sendout_id
  AND messages.channel = 'email'
  AND status.status NOT IN ('Skipped', 'Bounced', 'Bad email', 'Complaint')
  AND NOT status.has_unsubscribed
  AND (NOT status.is_opened
       OR (status.is_machine_open_only AND NOT $exclude_machine_openers))
  AND NOT EXISTS (
      SELECT 1 FROM unsubscribes
      WHERE unsubscribes.channel = 'email'
        AND unsubscribes.address = messages.recipient
        AND entry_blocks(unsubscribes.scope, $communication_type)
  )
ORDER BY messages.contact_id
