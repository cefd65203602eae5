-- Attach events that arrived before their message (or named it only by the provider's id) to the
-- message, once it exists; returns the stored order (seq) of each event attached. Only outbound
-- events without a message are looked at (few: a scan of one column finds them; inbound SMS
-- never belong to an outbound message), and with $since_seq set only those stored after it
-- (the events of the file being ingested). Leaves `found_messages` (seq, message_id, outcome_at)
-- of the events attached, for what follows in the same transaction (distrust_early_events.sql).
CREATE OR REPLACE TEMP TABLE unlinked_events AS
SELECT seq, sendout_message_id, provider_message_id, channel
FROM events
WHERE message_id IS NULL AND ($since_seq IS NULL OR seq > $since_seq)
  AND event_type NOT IN (SELECT unnest($inbound));

CREATE OR REPLACE TEMP TABLE found_messages AS
SELECT unlinked_events.seq, messages.message_id, messages.outcome_at
FROM unlinked_events
JOIN messages ON unlinked_events.sendout_message_id = messages.message_id
UNION ALL
SELECT unlinked_events.seq, messages.message_id, messages.outcome_at
FROM unlinked_events
JOIN messages
    ON unlinked_events.sendout_message_id IS NULL
    AND unlinked_events.provider_message_id = messages.provider_message_id
    AND unlinked_events.channel = messages.channel;

UPDATE events SET message_id = found_messages.message_id
FROM found_messages
WHERE events.seq = found_messages.seq
  AND ($since_seq IS NULL OR events.seq > $since_seq)
RETURNING events.seq;
