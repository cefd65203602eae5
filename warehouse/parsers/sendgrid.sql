-- SendGrid Event Webhook: arrays of event objects (one record per element, already unnested).
-- Custom args such as sendout_message_id arrive flattened at the top level of each event.
-- In: records(source_line, record, problem). Out: one row per event, or per unusable record.

CREATE OR REPLACE TEMP MACRO sendgrid_event(record) AS try(from_json(record, '{
    "email": "VARCHAR", "timestamp": "VARCHAR", "event": "VARCHAR", "sg_event_id": "VARCHAR",
    "sg_message_id": "VARCHAR", "sendout_message_id": "VARCHAR", "type": "VARCHAR",
    "status": "VARCHAR", "reason": "VARCHAR", "response": "VARCHAR", "url": "VARCHAR",
    "bounce_classification": "VARCHAR",
    "sg_machine_open": "BOOLEAN"
}'));

WITH
parsed AS (
    SELECT source_line, record, problem,
        CASE WHEN problem IS NULL AND starts_as_object(record) THEN sendgrid_event(record) END AS e
    FROM records
),

judged AS (
    SELECT *,
        coalesce(e.status, enhanced_status(coalesce(e.reason, e.response))) AS code,
        CASE WHEN e.event IN ('bounce', 'deferred') THEN classify_failure(
            CASE
                WHEN e.event = 'deferred' THEN 'delayed'
                WHEN e.type = 'blocked' THEN 'gave_up'  -- a block: the address may take mail later
                ELSE 'failed'
            END,
            code,
            smtp_reply_code(coalesce(e.reason, e.response)),
            coalesce(e.reason, e.response),
            'sendgrid:' || e.bounce_classification
        ) END AS verdict
    FROM parsed
),

mapped AS (
    SELECT *,
        CASE e.event
            WHEN 'processed' THEN 'queued'
            WHEN 'delivered' THEN 'delivered'
            WHEN 'deferred' THEN verdict.event_type
            WHEN 'bounce' THEN verdict.event_type
            WHEN 'dropped' THEN
                CASE
                    WHEN e.reason IN ('Bounced Address', 'Unsubscribed Address', 'Spam Reporting Address')
                        THEN 'skipped'
                    WHEN e.reason IN ('Invalid', 'Invalid Address') THEN 'bad_email'
                    ELSE 'failed'
                END
            WHEN 'open' THEN 'opened'
            WHEN 'click' THEN 'clicked'
            WHEN 'spamreport' THEN 'complaint'
            WHEN 'unsubscribe' THEN 'unsubscribed'
            WHEN 'group_unsubscribe' THEN 'unsubscribed'
        END AS event_type
    FROM judged
)

SELECT
    source_line,
    coalesce(e.sg_event_id, derived_event_id(record)) AS event_id,
    event_type,
    e.sendout_message_id,
    nullif(split_part(e.sg_message_id, '.', 1), '') AS provider_message_id,
    email_address(e.email) AS recipient,
    event_time(e.timestamp) AS occurred_at,
    coalesce(e.event = 'open' AND e.sg_machine_open, false) AS is_machine_open,
    CASE WHEN e.event = 'click' THEN e.url END AS url,
    CASE WHEN e.event = 'bounce' THEN verdict.bounce_kind END AS bounce_kind,
    CASE WHEN e.event IN ('bounce', 'deferred', 'dropped') THEN code END AS status_code,
    verdict.bounce_reason AS bounce_reason,
    coalesce(e.reason, e.response) AS reason,
    NULL::VARCHAR AS body,
    record AS payload,
    NULL::VARCHAR AS time_problem,
    event_problem(
        problem, record, e, 'SendGrid', '"event" field', e.event, event_type, e.email,
        event_time(e.timestamp), e.timestamp
    ) AS problem
FROM mapped
