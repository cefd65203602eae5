-- Store what dispatch learnt about each message in `outcomes` (one row per message): an event
-- in the canonical table (so statuses and the Unsubscribes list see it like any other), and the
-- outcome on the message itself. A refusal or delay goes through the one classifier
-- (classify.sql), which says whether it proves a bad address, its kind and its reason.
CREATE OR REPLACE TEMP TABLE judged_outcomes AS
WITH
judged AS (
    SELECT outcomes.* EXCLUDE (event_type, bounce_kind),
        CASE
            WHEN outcomes.provider = 'twilio' AND outcomes.event_type IN ('bad_number', 'skipped', 'failed', 'deferred')
                THEN struct_pack(event_type := outcomes.event_type, bounce_kind := NULL::VARCHAR,
                                 bounce_reason := classify_sms_failure(outcomes.status_code).bounce_reason)
            WHEN outcomes.event_type IN ('bounced', 'bad_email', 'deferred') THEN classify_failure(
                CASE WHEN outcomes.event_type = 'deferred' THEN 'delayed' ELSE 'failed' END,
                outcomes.status_code,
                smtp_reply_code(outcomes.reason),
                outcomes.reason,
                NULL
            )
        END AS verdict,
        outcomes.event_type AS said,
        outcomes.bounce_kind AS said_kind
    FROM outcomes
)
SELECT * EXCLUDE (verdict, said, said_kind),
    coalesce(verdict.event_type, said) AS event_type,
    coalesce(verdict.bounce_kind, said_kind) AS bounce_kind,
    verdict.bounce_reason AS bounce_reason
FROM judged;

INSERT INTO events (event_id, provider, channel, event_type, message_id, sendout_message_id,
    provider_message_id, recipient, occurred_at, status_code, reason, bounce_kind, bounce_reason,
    payload, event_hash, source_file, source_line, ingested_at)
WITH
identified AS (
    SELECT
        judged_outcomes.*,
        messages.channel,
        messages.recipient,
        CASE WHEN judged_outcomes.provider = 'twilio' AND judged_outcomes.provider_message_id IS NOT NULL
             -- the id Twilio's status callback for this status gets too, so they dedupe
             THEN concat_ws(':', judged_outcomes.provider_message_id, judged_outcomes.event_type,
                            coalesce(judged_outcomes.status_code, ''))
             ELSE judged_outcomes.message_id || ':' || judged_outcomes.event_type || ':' || messages.attempts
        END AS event_id
    FROM judged_outcomes
    JOIN messages USING (message_id)
)

SELECT
    event_id, provider, channel, event_type, message_id, message_id, provider_message_id,
    recipient, occurred_at, status_code, reason, bounce_kind, bounce_reason, payload,
    md5_number_lower(event_id),
    'dispatch:' || $run_id, 0, $now
FROM identified
WHERE NOT EXISTS (
    SELECT 1 FROM events
    WHERE events.event_hash = md5_number_lower(identified.event_id)
      AND events.provider = identified.provider AND events.event_id = identified.event_id
);

UPDATE messages SET
    outcome = judged_outcomes.event_type,
    outcome_at = judged_outcomes.occurred_at,
    provider = judged_outcomes.provider,
    provider_message_id = coalesce(judged_outcomes.provider_message_id, messages.provider_message_id)
FROM judged_outcomes
WHERE messages.message_id = judged_outcomes.message_id;
