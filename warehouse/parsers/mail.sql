-- Bounce mail from any relay: the evidence warehouse.bounce_mail read from each raw email (a DSN,
-- a feedback report, a bounce in no standard format), one record per email.
-- In: records(source_line, record, problem). Out: one row per failed recipient, or one row per
-- email that yields none, with `problem` set (an auto-reply, no recipient found).
-- A bounce joins its message by our id (VERP address, envelope id, returned headers) when it is
-- about the message's recipient, else by the latest email we sent to that recipient in the 30
-- days before it; else it stays unmatched (and lists nobody).
-- A bounce's Date header that cannot be believed (macros.sql: event_time_problem) gives way to
-- the time of receipt, and time_problem says so: the bounce itself is still true.

CREATE OR REPLACE TEMP MACRO mail_evidence(record) AS try(from_json(record, '{"sendout_mail": {
    "mail": "VARCHAR", "id": "VARCHAR", "date": "VARCHAR", "sendout_message_id": "VARCHAR",
    "envelope_id": "VARCHAR", "feedback_type": "VARCHAR",
    "recipients": [{"address": "VARCHAR", "action": "VARCHAR", "status": "VARCHAR",
                    "diagnostic": "VARCHAR", "remote_mta": "VARCHAR"}]
}}').sendout_mail);

WITH
parsed AS (
    SELECT source_line, record, problem,
        CASE WHEN starts_as_object(record) THEN mail_evidence(record) END AS m
    FROM records
),

per_recipient AS (
    SELECT * EXCLUDE (m), m,
        unnest(CASE WHEN problem IS NULL AND len(m.recipients) > 0 THEN m.recipients
                    ELSE [NULL] END) AS rcpt
    FROM parsed
),

judged AS (
    SELECT *,
        email_address(rcpt.address) AS recipient,
        -- a Date that cannot be believed is like none: a far MTA's clock, or an old message fed
        -- again, says nothing of when the bounce came; the time of receipt does (flagged)
        event_time(m.date) AS dated_at,
        CASE WHEN m.date IS NOT NULL THEN event_time_problem(dated_at, m.date) END AS date_problem,
        CASE WHEN date_problem IS NULL THEN dated_at END AS believed_at,
        coalesce(believed_at, $received_at::TIMESTAMPTZ) AS event_at,
        coalesce(rcpt.status, enhanced_status(rcpt.diagnostic)) AS code,
        CASE WHEN m.mail <> 'feedback' THEN classify_failure(
            CASE
                WHEN rcpt.action = 'failed' THEN 'failed'
                WHEN rcpt.action = 'delayed' THEN 'delayed'
                WHEN rcpt.action IN ('delivered', 'relayed', 'expanded') THEN 'delivered'
            END,
            code,
            smtp_reply_code(rcpt.diagnostic),
            rcpt.diagnostic,
            NULL
        ) END AS verdict,
        coalesce(m.sendout_message_id, m.envelope_id) AS our_id
    FROM per_recipient
),

-- for a bounce that names none of our ids: the latest email to its recipient before it
sent_to AS (
    SELECT message_id, recipient, created_at
    FROM messages
    WHERE channel = 'email'
      AND recipient IN (SELECT recipient FROM judged WHERE our_id IS NULL)
),

-- a failure of some other address (a forward target, a helpdesk the text mentions) in a bounce
-- of our message is not the message's: it is kept unmatched, and so lists nobody
named AS (
    SELECT message_id, recipient
    FROM messages
    WHERE message_id IN (SELECT our_id FROM judged)
),

joined AS (
    SELECT judged.*,
        CASE
            WHEN our_id IS NULL AND event_at - sent_to.created_at <= INTERVAL 30 DAY
                THEN sent_to.message_id
            WHEN named.recipient IS NULL OR named.recipient = judged.recipient THEN our_id
        END AS sendout_message_id
    FROM judged
    ASOF LEFT JOIN sent_to
        ON judged.recipient = sent_to.recipient AND judged.event_at >= sent_to.created_at
    LEFT JOIN named ON named.message_id = judged.our_id
),

mapped AS (
    SELECT *,
        CASE
            WHEN m.mail = 'feedback' THEN
                CASE WHEN m.feedback_type <> 'not-spam' THEN 'complaint' END
            ELSE verdict.event_type
        END AS event_type
    FROM joined
)

SELECT
    source_line,
    m.id || ':' || coalesce(recipient, '') AS event_id,
    event_type,
    sendout_message_id,
    NULL::VARCHAR AS provider_message_id,
    recipient,
    event_at AS occurred_at,
    false AS is_machine_open,
    NULL::VARCHAR AS url,
    CASE WHEN event_type IN ('bounced', 'bad_email') THEN verdict.bounce_kind END AS bounce_kind,
    CASE WHEN m.mail <> 'feedback' THEN code END AS status_code,
    CASE WHEN event_type IN ('bounced', 'bad_email', 'deferred') THEN verdict.bounce_reason END
        AS bounce_reason,
    coalesce(rcpt.diagnostic, CASE WHEN m.mail = 'feedback' THEN 'feedback: ' || m.feedback_type END)
        AS reason,
    NULL::VARCHAR AS body,
    record AS payload,
    date_problem || '; stored with the time of receipt' AS time_problem,
    CASE
        WHEN problem IS NOT NULL THEN problem
        WHEN m IS NULL THEN 'not a record of bounce mail'
        WHEN m.mail = 'feedback' AND event_type IS NULL THEN
            'feedback type not-spam is not a complaint'
        WHEN recipient IS NULL THEN 'no failed recipient found in the message'
        ELSE event_time_problem(event_at, coalesce(
            believed_at::VARCHAR, file_time_text($received_at)))
    END AS problem
FROM mapped
