-- Claim up to $size messages of a send-out that have no outcome, for run $run_id, and return
-- them with what is needed to render and send them. Messages of the run's own slice of the
-- send-out ($low <= message_id < $high; everything for a whole run) come first, then any other
-- that no live run holds, so that a run whose slice is done takes over a dead run's. A message
-- another run had claimed (that run died in flight: it is in $gone, the runs known dead, or it
-- went quiet before $stale_before) is flagged as a possible duplicate, unless that run's
-- journal was read ($journaled_runs) and does not say the message went out ($started).
-- Which of them the Unsubscribes list blocks is asked next (blocking_unsubscribes.sql).

-- First the run's claims still going out are renewed (the batch claimed last is sent while this
-- one is claimed), so that no other run takes them for stale; to a microsecond before $now,
-- which marks the rows of this claim.
UPDATE messages SET claimed_at = $now - INTERVAL 1 MICROSECOND
WHERE sendout_id = $sendout_id AND claimed_by = $run_id AND outcome IS NULL;

UPDATE messages SET
    claimed_at = $now,
    claimed_by = $run_id,
    attempts = attempts + 1,
    is_possible_duplicate = is_possible_duplicate OR (
        claimed_by IS NOT NULL
        AND (NOT list_contains($journaled_runs::VARCHAR[], claimed_by)
             OR list_contains($started::VARCHAR[], message_id))
    )
WHERE message_id IN (
    SELECT message_id FROM messages
    WHERE sendout_id = $sendout_id
      AND outcome IS NULL
      AND (
          claimed_by IS NULL
          OR (claimed_by <> $run_id
              AND (list_contains($gone::VARCHAR[], claimed_by) OR claimed_at < $stale_before))
      )
    ORDER BY NOT (message_id >= $low AND ($high IS NULL OR message_id < $high)), message_id
    LIMIT $size
);

SELECT
    messages.message_id, messages.sendout_id, messages.channel, messages.recipient,
    messages.sms_text, messages.is_possible_duplicate,
    sendouts.communication_type, sendouts.sender, sendouts.subject, sendouts.html_body,
    sendouts.text_body, sendouts.is_tracked, sendouts.forward_to, sendouts.auto_reply_text,
    contacts.first_name, contacts.last_name, contacts.email, contacts.mobile
FROM messages
JOIN sendouts USING (sendout_id)
LEFT JOIN contacts USING (contact_id)
WHERE messages.sendout_id = $sendout_id
  AND messages.claimed_by = $run_id
  AND messages.outcome IS NULL
  AND messages.claimed_at = $now
ORDER BY messages.message_id;
