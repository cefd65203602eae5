-- Store what dispatch learnt about each message in `outcomes` (one row per message): an event
-- in the canonical table (so statuses and the Unsubscribes list see it like any other), and the
-- outcome on the message itself.
INSERT INTO events (event_id, provider, channel, event_type, message_id, sendout_message_id,
    provider_message_id, recipient, occurred_at, status_code, reason, bounce_kind, payload,
    event_hash, source_file, source_line, ingested_at)
WITH
identified AS (
    SELECT
        outcomes.*,
        messages.channel,
        messages.recipient,
        CASE WHEN outcomes.provider = 'twilio' AND outcomes.provider_message_id IS NOT NULL
             -- the id Twilio's status callback for this status gets too, so they dedupe
             THEN concat_ws(':', outcomes.provider_message_id, outcomes.event_type,
                            coalesce(outcomes.status_code, ''))
             ELSE outcomes.message_id || ':' || outcomes.event_type || ':' || messages.attempts
        END AS event_id
    FROM outcomes
    JOIN messages USING (message_id)
)

SELECT
    event_id, provider, channel, event_type, message_id, message_id, provider_message_id,
    recipient, occurred_at, status_code, reason, bounce_kind, payload,
    md5_number_lower(event_id),
    'dispatch:' || $run_id, 0, $now
FROM identified
WHERE NOT EXISTS (
    SELECT 1 FROM events
    WHERE events.event_hash = md5_number_lower(identified.event_id)
      AND events.provider = identified.provider AND events.event_id = identified.event_id
);

UPDATE messages SET
    outcome = outcomes.event_type,
    outcome_at = outcomes.occurred_at,
    provider = outcomes.provider,
    provider_message_id = coalesce(outcomes.provider_message_id, messages.provider_message_id)
FROM outcomes
WHERE messages.message_id = outcomes.message_id;
