-- How many messages of send-out $sendout_id a dispatch has claimed or settled, or a provider
-- reported on: none, and nothing of it has gone out (it can still be cancelled).
SELECT count(*) AS gone_out
FROM messages
WHERE sendout_id = $sendout_id
  AND (claimed_by IS NOT NULL
       OR outcome IS NOT NULL
       OR EXISTS (SELECT 1 FROM events WHERE events.message_id = messages.message_id));
