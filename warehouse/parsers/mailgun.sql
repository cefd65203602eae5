-- Mailgun: webhook bodies {"signature": ..., "event-data": {...}} and Events API items (the
-- reader already unwrapped {"items": [...]} into one record per item).
-- In: records(source_line, record, problem). Out: one row per event, or per unusable record.

CREATE OR REPLACE TEMP MACRO mailgun_event(record) AS try(from_json(
    coalesce(try(json_extract(record, '$."event-data"')), record::JSON), '{
    "id": "VARCHAR", "timestamp": "VARCHAR", "event": "VARCHAR", "recipient": "VARCHAR",
    "severity": "VARCHAR", "reason": "VARCHAR", "url": "VARCHAR",
    "delivery-status": {"code": "VARCHAR", "message": "VARCHAR", "description": "VARCHAR",
                        "enhanced-code": "VARCHAR", "bounce-type": "VARCHAR"},
    "message": {"headers": {"message-id": "VARCHAR", "to": "VARCHAR"}},
    "user-variables": {"sendout_message_id": "VARCHAR"},
    "client-info": {"bot": "VARCHAR"}
}'));

WITH
parsed AS (
    SELECT source_line, record, problem,
        CASE WHEN problem IS NULL AND starts_as_object(record) THEN mailgun_event(record) END AS e
    FROM records
),

mapped AS (
    SELECT *,
        e."delivery-status" AS ds,
        concat_ws(' ', e."delivery-status".message, e."delivery-status".description) AS ds_text,
        coalesce(nullif(e."delivery-status"."enhanced-code", ''),
                 enhanced_status(concat_ws(' ', e."delivery-status".message,
                                           e."delivery-status".description))) AS code,
        event_time(e.timestamp) AS event_at
    FROM parsed
),

judged AS (
    SELECT *,
        CASE WHEN e.event = 'failed' THEN classify_failure(
            CASE
                -- "old": Mailgun gave up retrying, whatever severity it reports
                WHEN e.reason = 'old' THEN 'gave_up'
                WHEN e.severity = 'temporary' THEN 'delayed'
                WHEN ds."bounce-type" = 'soft' THEN 'gave_up'
                ELSE 'failed'
            END,
            code,
            coalesce(smtp_reply_code(ds.code), smtp_reply_code(ds_text)),
            ds_text,
            'mailgun:' || e.reason
        ) END AS verdict
    FROM mapped
),

classified AS (
    SELECT *,
        CASE e.event
            WHEN 'accepted' THEN 'queued'
            WHEN 'delivered' THEN 'delivered'
            WHEN 'failed' THEN
                CASE
                    WHEN e.reason IN ('suppress-bounce', 'suppress-unsubscribe', 'suppress-complaint')
                        THEN 'skipped'
                    ELSE verdict.event_type
                END
            WHEN 'rejected' THEN 'failed'
            WHEN 'opened' THEN 'opened'
            WHEN 'clicked' THEN 'clicked'
            WHEN 'unsubscribed' THEN 'unsubscribed'
            WHEN 'complained' THEN 'complaint'
        END AS event_type
    FROM judged
)

SELECT
    source_line,
    coalesce(e.id || ':' || strftime(event_at, '%Y-%m-%d'), derived_event_id(record)) AS event_id,
    event_type,
    e."user-variables".sendout_message_id AS sendout_message_id,
    trim(e.message.headers."message-id", '<> ') AS provider_message_id,
    email_address(coalesce(e.recipient, e.message.headers."to")) AS recipient,
    event_at AS occurred_at,
    coalesce(
        e.event IN ('opened', 'clicked') AND nullif(e."client-info".bot, '') NOT IN ('false', '0'),
        false
    ) AS is_machine_open,
    CASE WHEN e.event = 'clicked' THEN e.url END AS url,
    CASE WHEN event_type IN ('bounced', 'bad_email') THEN verdict.bounce_kind END AS bounce_kind,
    CASE WHEN e.event = 'failed' THEN coalesce(code, ds.code) END AS status_code,
    CASE WHEN event_type IN ('bounced', 'bad_email', 'deferred') THEN verdict.bounce_reason END
        AS bounce_reason,
    coalesce(nullif(ds_text, ''), e.reason) AS reason,
    NULL::VARCHAR AS body,
    record AS payload,
    NULL::VARCHAR AS time_problem,
    event_problem(
        problem, record, e, 'Mailgun', '"event" field', e.event, event_type,
        coalesce(e.recipient, e.message.headers."to"), event_at, e.timestamp
    ) AS problem
FROM classified
