-- Sendout's own records: what the tracking service saw of mail sent through our SMTP sender
-- (opens by pixel, clicks through /t/c/, unsubscribes by link or one-click). The recipient is
-- the message's, since the token names the message only.
-- In: records(source_line, record, problem). Out: one row per event, or per unusable record.

CREATE OR REPLACE TEMP MACRO sendout_record(record) AS try(from_json(record, '{
    "sendout_event": "VARCHAR", "id": "VARCHAR", "sendout_message_id": "VARCHAR",
    "at": "VARCHAR", "url": "VARCHAR", "user_agent": "VARCHAR", "is_machine_open": "BOOLEAN"
}'));

WITH
parsed AS (
    SELECT source_line, record, problem,
        CASE WHEN problem IS NULL AND starts_as_object(record) THEN sendout_record(record) END AS e
    FROM records
),

mapped AS (
    SELECT parsed.*,
        CASE e.sendout_event
            WHEN 'opened' THEN 'opened'
            WHEN 'clicked' THEN 'clicked'
            WHEN 'unsubscribed' THEN 'unsubscribed'
        END AS event_type,
        messages.recipient,
        event_time(e.at) AS occurred_at
    FROM parsed
    LEFT JOIN messages ON messages.message_id = parsed.e.sendout_message_id
)

SELECT
    source_line,
    coalesce(e.id, derived_event_id(record)) AS event_id,
    event_type,
    e.sendout_message_id,
    NULL::VARCHAR AS provider_message_id,
    recipient,
    occurred_at,
    -- a click can be a machine's too: a link scanner's (the service flags it)
    coalesce(event_type IN ('opened', 'clicked') AND e.is_machine_open, false) AS is_machine_open,
    CASE WHEN event_type = 'clicked' THEN e.url END AS url,
    NULL::VARCHAR AS bounce_kind,
    NULL::VARCHAR AS status_code,
    NULL::VARCHAR AS bounce_reason,
    e.user_agent AS reason,
    NULL::VARCHAR AS body,
    record AS payload,
    NULL::VARCHAR AS time_problem,
    CASE
        WHEN problem IS NOT NULL THEN problem
        WHEN e IS NULL THEN json_problem(record)
        WHEN event_type IS NULL THEN 'unknown Sendout event ''' || coalesce(e.sendout_event, '') || ''''
        WHEN recipient IS NULL THEN 'no message ' || coalesce(e.sendout_message_id, '(none)')
        ELSE event_time_problem(occurred_at, e.at)
    END AS problem
FROM mapped
