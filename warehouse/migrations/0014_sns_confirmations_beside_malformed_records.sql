-- pending_sns_confirmations read every SES record in quarantine as JSON, and quarantine keeps
-- what is not JSON too (a line cut short, text that is not UTF-8): one such record made the
-- view, `sendout sns-confirmations` and the dashboard's Messages page fail. A record that is
-- not JSON is now no request (try_cast), and the view is otherwise the same (0005).
CREATE OR REPLACE VIEW pending_sns_confirmations AS
WITH
quarantined AS (
    SELECT try_cast(raw AS JSON) AS record, quarantined_at
    FROM quarantine
    WHERE provider = 'ses'
),

requests AS (
    SELECT
        json_extract_string(record, '$.TopicArn') AS topic_arn,
        json_extract_string(record, '$.SubscribeURL') AS subscribe_url,
        coalesce(
            try_cast(json_extract_string(record, '$.Timestamp') AS TIMESTAMPTZ), quarantined_at
        ) AS requested_at,
        quarantined_at
    FROM quarantined
    WHERE json_extract_string(record, '$.Type') = 'SubscriptionConfirmation'
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
