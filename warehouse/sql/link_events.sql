-- Attach events that arrived before their message (or named it only by the provider's id) to the
-- message, once it exists. Events already attached are left alone, so this is cheap to repeat.
UPDATE events SET message_id = messages.message_id
FROM messages
WHERE events.message_id IS NULL
  AND events.sendout_message_id = messages.message_id;

UPDATE events SET message_id = messages.message_id
FROM messages
WHERE events.message_id IS NULL
  AND events.sendout_message_id IS NULL
  AND events.provider_message_id = messages.provider_message_id
  AND events.channel = messages.channel;
