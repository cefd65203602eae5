-- Every outbound event that belongs to a message: what a full refresh folds into the statuses
-- (an incremental one takes only what is new: refresh_dirty_messages.sql).
SELECT message_id, event_type, occurred_at, is_machine_open, bounce_kind, bounce_reason
FROM events
WHERE message_id IS NOT NULL
  AND event_type IN (SELECT unnest($outbound))
