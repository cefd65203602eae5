-- The messages whose status may have changed since the last refresh: created since, or with
-- events ingested since, or that just gained events by linking (linked_messages).
CREATE OR REPLACE TEMP TABLE dirty_messages AS
SELECT message_id FROM messages WHERE $since IS NULL OR created_at > $since
UNION
SELECT message_id FROM events
WHERE message_id IS NOT NULL AND $since IS NOT NULL AND ingested_at > $since
UNION
SELECT message_id FROM linked_messages;
