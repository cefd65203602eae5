-- Amazon SNS asks us to confirm each subscription of a topic to the webhook service. The
-- request is not an event, so ingest keeps it in quarantine; here it waits for an operator
-- until a notification of that topic arrives (the subscription works) or its link expires,
-- three days after SNS sent it. One row per topic: its newest link.
CREATE VIEW pending_sns_confirmations AS
WITH requests AS (
    SELECT
        json_extract_string(raw, '$.TopicArn') AS topic_arn,
        json_extract_string(raw, '$.SubscribeURL') AS subscribe_url,
        coalesce(
            try_cast(json_extract_string(raw, '$.Timestamp') AS TIMESTAMPTZ), quarantined_at
        ) AS requested_at
    FROM quarantine
    WHERE provider = 'ses' AND reason LIKE 'SNS SubscriptionConfirmation %'
),
live AS (
    SELECT topic_arn, arg_max(subscribe_url, requested_at) AS subscribe_url,
        max(requested_at) AS requested_at
    FROM requests
    WHERE requested_at > now() - INTERVAL 3 DAY
    GROUP BY topic_arn
)
SELECT topic_arn, subscribe_url, requested_at, requested_at + INTERVAL 3 DAY AS expires_at
FROM live
WHERE NOT EXISTS (
    SELECT 1 FROM events
    WHERE events.provider = 'ses'
      AND events.occurred_at >= live.requested_at
      AND json_extract_string(events.payload, '$.TopicArn') = live.topic_arn
);
