-- What a refresh takes in: the outbound events stored since the last one ($since_seq; all when
-- null) that belong to a message, and those that joined their message only now
-- (linked_events: stored earlier, unmatched until this refresh); and the messages whose status
-- may change: the ones these events belong to and those created since the last refresh.
CREATE OR REPLACE TEMP TABLE refresh_events AS
SELECT message_id, event_type, occurred_at, is_machine_open, bounce_kind, bounce_reason
FROM events
WHERE message_id IS NOT NULL
  AND ($since_seq IS NULL OR seq > $since_seq)
  AND event_type IN (SELECT unnest($outbound))
UNION ALL
SELECT message_id, event_type, occurred_at, is_machine_open, bounce_kind, bounce_reason
FROM events
SEMI JOIN linked_events USING (seq)
WHERE $since_seq IS NOT NULL AND seq <= $since_seq
  AND event_type IN (SELECT unnest($outbound));

CREATE OR REPLACE TEMP TABLE dirty_messages AS
SELECT DISTINCT message_id FROM refresh_events
UNION
SELECT message_id FROM messages WHERE $since IS NULL OR created_at > $since;
