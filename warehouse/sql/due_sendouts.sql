-- Send-outs whose time has come ($now) and that still have messages without an outcome, the
-- longest due first.
SELECT sendout_id FROM sendouts
WHERE cancelled_at IS NULL AND coalesce(scheduled_at, created_at) <= $now
  AND EXISTS (SELECT 1 FROM messages
              WHERE messages.sendout_id = sendouts.sendout_id AND outcome IS NULL)
ORDER BY coalesce(scheduled_at, created_at), sendout_id;
