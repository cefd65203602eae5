-- Amazon SNS asks us to confirm each subscription of a topic to the webhook service. The
-- request is not an event, so ingest keeps it in quarantine; here it waits for an operator
-- until a notification of that topic arrives (the subscription works) or its link expires,
-- three days after SNS sent it. One row per topic: its newest link. Only links to Amazon SNS
-- are shown: ingest does not check signatures, so a record could come from anywhere.
CREATE VIEW pending_sns_confirmations AS
WITH requests AS (
    SELECT
        json_extract_string(raw, '$.TopicArn') AS topic_arn,
        json_extract_string(raw, '$.SubscribeURL') AS subscribe_url,
        coalesce(
            try_cast(json_extract_string(raw, '$.Timestamp') AS TIMESTAMPTZ), quarantined_at
        ) AS requested_at,
        quarantined_at
    FROM quarantine
    WHERE provider = 'ses' AND json_extract_string(raw, '$.Type') = 'SubscriptionConfirmation'
),
live AS (
    SELECT topic_arn, arg_max(subscribe_url, requested_at) AS subscribe_url,
        max(requested_at) AS requested_at, max(quarantined_at) AS quarantined_at
    FROM requests
    WHERE requested_at > now() - INTERVAL 3 DAY
      AND regexp_full_match(subscribe_url, 'https://sns\.[a-z0-9-]+\.amazonaws\.com/\?.*')
    GROUP BY topic_arn
)
SELECT topic_arn, subscribe_url, requested_at, requested_at + INTERVAL 3 DAY AS expires_at
FROM live
-- a notification SNS published after the request: ingested after it, so the cheap test first
WHERE NOT EXISTS (
    SELECT 1 FROM events
    WHERE events.provider = 'ses'
      AND events.ingested_at >= live.quarantined_at
      AND json_extract_string(events.payload, '$.TopicArn') = live.topic_arn
      AND try_cast(json_extract_string(events.payload, '$.Timestamp') AS TIMESTAMPTZ)
          >= live.requested_at
);
