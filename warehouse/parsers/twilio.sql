-- Twilio: message status callbacks and inbound messages, as JSON objects or form-encoded lines
-- (the reader turns those into JSON objects of strings). Twilio sends no event time: we take
-- `sendout_received_at` when our webhook receiver recorded it, else $received_at (the file's).
-- In: records(source_line, record, problem). Out: one row per event, or per unusable record.

CREATE OR REPLACE TEMP MACRO twilio_event(record) AS try(from_json(record, '{
    "MessageSid": "VARCHAR", "SmsSid": "VARCHAR", "MessageStatus": "VARCHAR",
    "SmsStatus": "VARCHAR", "To": "VARCHAR", "From": "VARCHAR", "Body": "VARCHAR",
    "ErrorCode": "VARCHAR", "ErrorMessage": "VARCHAR", "sendout_message_id": "VARCHAR",
    "sendout_received_at": "VARCHAR"
}'));

WITH
parsed AS (
    SELECT source_line, record, problem,
        CASE WHEN problem IS NULL AND starts_as_object(record) THEN twilio_event(record) END AS e
    FROM records
),

mapped AS (
    SELECT *,
        coalesce(e.MessageSid, e.SmsSid) AS sid,
        lower(coalesce(e.MessageStatus, e.SmsStatus)) AS status,
        nullif(trim(e.ErrorCode), '') AS error_code
    FROM parsed
),

classified AS (
    SELECT *,
        CASE
            WHEN status IN ('accepted', 'scheduled', 'queued', 'sending') THEN 'queued'
            WHEN status = 'sent' THEN 'sent'
            WHEN status IN ('delivered', 'read', 'partially_delivered') THEN 'delivered'
            WHEN status = 'received' THEN 'received'
            -- what our webhook service did with an inbound SMS (never a Twilio status)
            WHEN status = 'replied' THEN 'replied'
            WHEN status = 'forwarded' THEN 'forwarded'
            WHEN status = 'canceled' THEN 'failed'
            WHEN status IN ('undelivered', 'failed') THEN classify_sms_failure(error_code).event_type
        END AS event_type,
        CASE WHEN status = 'received' THEN e."From" ELSE e."To" END AS address,
        coalesce(event_time(e.sendout_received_at), $received_at::TIMESTAMPTZ) AS event_at
    FROM mapped
)

SELECT
    source_line,
    concat_ws(':', sid, status, coalesce(error_code, '')) AS event_id,
    event_type,
    e.sendout_message_id,
    sid AS provider_message_id,
    phone_number(address) AS recipient,
    event_at AS occurred_at,
    false AS is_machine_open,
    NULL::VARCHAR AS url,
    NULL::VARCHAR AS bounce_kind,
    error_code AS status_code,
    CASE WHEN status IN ('undelivered', 'failed') THEN classify_sms_failure(error_code).bounce_reason END
        AS bounce_reason,
    e.ErrorMessage AS reason,
    CASE WHEN event_type IN ('received', 'replied', 'forwarded') THEN e.Body END AS body,
    record AS payload,
    NULL::VARCHAR AS time_problem,
    CASE
        WHEN problem IS NOT NULL THEN problem
        WHEN e IS NULL THEN json_problem(record)
        WHEN sid IS NULL THEN 'not a Twilio message callback: no MessageSid'
        WHEN status IS NULL THEN 'no MessageStatus or SmsStatus in the Twilio callback'
        WHEN event_type IS NULL THEN 'unknown Twilio message status ''' || status || ''''
        WHEN phone_number(address) IS NULL THEN 'no phone number in the Twilio callback'
        ELSE event_time_problem(event_at, coalesce(
            e.sendout_received_at, file_time_text($received_at)))
    END AS problem
FROM classified
