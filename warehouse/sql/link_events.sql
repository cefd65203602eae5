-- Attach events that arrived before their message (or named it only by the provider's id) to the
-- message, once it exists; returns the stored order (seq) of each event attached. Events already
-- attached are left alone, so this is cheap to repeat. With $source_file and $ingested_at set,
-- only the events of that ingested file are considered.
UPDATE events SET message_id = messages.message_id
FROM messages
WHERE events.message_id IS NULL
  AND events.sendout_message_id = messages.message_id
  AND ($source_file IS NULL
       OR (events.source_file = $source_file AND events.ingested_at = $ingested_at))
RETURNING events.seq;

UPDATE events SET message_id = messages.message_id
FROM messages
WHERE events.message_id IS NULL
  AND events.sendout_message_id IS NULL
  AND events.provider_message_id = messages.provider_message_id
  AND events.channel = messages.channel
  AND ($source_file IS NULL
       OR (events.source_file = $source_file AND events.ingested_at = $ingested_at))
RETURNING events.seq;
