-- Postmark webhooks: one object per event, told apart by RecordType.
-- In: records(source_line, record, problem). Out: one row per event, or per unusable record.

CREATE OR REPLACE TEMP MACRO postmark_event(record) AS try(from_json(record, '{
    "RecordType": "VARCHAR", "MessageID": "VARCHAR", "Recipient": "VARCHAR", "Email": "VARCHAR",
    "Type": "VARCHAR", "Description": "VARCHAR", "Details": "VARCHAR",
    "DeliveredAt": "VARCHAR", "BouncedAt": "VARCHAR", "ReceivedAt": "VARCHAR",
    "ChangedAt": "VARCHAR", "OriginalLink": "VARCHAR", "SuppressSending": "BOOLEAN",
    "SuppressionReason": "VARCHAR", "Origin": "VARCHAR", "Metadata": {"sendout_message_id": "VARCHAR"}
}'));

WITH
parsed AS (
    SELECT source_line, record, problem,
        CASE WHEN problem IS NULL AND starts_as_object(record) THEN postmark_event(record) END AS e
    FROM records
),

judged AS (
    SELECT *,
        -- the words are the receiving server's (Details); Description is Postmark's fixed text
        -- for the bounce type ("ex: unknown user, mailbox not found" for every HardBounce),
        -- which the type already says as a hint
        enhanced_status(e.Details) AS code,
        CASE WHEN e.RecordType = 'Bounce' THEN classify_failure(
            CASE
                WHEN e.Type IN ('HardBounce', 'BadEmailAddress', 'Undeliverable', 'DMARCPolicy')
                    THEN 'failed'
                WHEN e.Type IN ('SoftBounce', 'Blocked', 'Unknown') THEN 'gave_up'
                WHEN e.Type IN ('Transient', 'DnsError') THEN 'delayed'
            END,
            code,
            smtp_reply_code(e.Details),
            e.Details,
            'postmark:' || e.Type
        ) END AS verdict
    FROM parsed
),

mapped AS (
    SELECT *,
        CASE e.RecordType
            WHEN 'Delivery' THEN 'delivered'
            WHEN 'Open' THEN 'opened'
            WHEN 'Click' THEN 'clicked'
            WHEN 'SpamComplaint' THEN 'complaint'
            WHEN 'SubscriptionChange' THEN
                -- ManualSuppression is also what an operator's own suppression says
                CASE WHEN e.SuppressSending AND e.SuppressionReason = 'ManualSuppression'
                        AND coalesce(e.Origin, 'Recipient') = 'Recipient'
                    THEN 'unsubscribed' END
            WHEN 'Bounce' THEN
                CASE
                    WHEN e.Type IN ('HardBounce', 'BadEmailAddress', 'Undeliverable', 'DMARCPolicy',
                                    'SoftBounce', 'Blocked', 'Unknown', 'Transient', 'DnsError')
                        THEN verdict.event_type
                    WHEN e.Type = 'SpamComplaint' THEN 'complaint'
                    WHEN e.Type = 'Unsubscribe' THEN 'unsubscribed'
                    WHEN e.Type = 'ManuallyDeactivated' THEN 'skipped'
                    WHEN e.Type IN ('SMTPApiError', 'TemplateRenderingFailed') THEN 'failed'
                END
        END AS event_type,
        CASE e.RecordType
            WHEN 'Delivery' THEN e.DeliveredAt
            WHEN 'Bounce' THEN e.BouncedAt
            WHEN 'SpamComplaint' THEN e.BouncedAt
            WHEN 'SubscriptionChange' THEN e.ChangedAt
            ELSE e.ReceivedAt
        END AS time_text
    FROM judged
)

SELECT
    source_line,
    derived_event_id(record) AS event_id,
    event_type,
    e.Metadata.sendout_message_id AS sendout_message_id,
    e.MessageID AS provider_message_id,
    email_address(coalesce(e.Recipient, e.Email)) AS recipient,
    event_time(time_text) AS occurred_at,
    false AS is_machine_open,
    e.OriginalLink AS url,
    CASE WHEN event_type IN ('bounced', 'bad_email') THEN verdict.bounce_kind END AS bounce_kind,
    CASE WHEN e.RecordType = 'Bounce' THEN code END AS status_code,
    CASE WHEN event_type IN ('bounced', 'bad_email', 'deferred') THEN verdict.bounce_reason END
        AS bounce_reason,
    coalesce(e.Details, e.Description, e.SuppressionReason) AS reason,
    NULL::VARCHAR AS body,
    record AS payload,
    NULL::VARCHAR AS time_problem,
    CASE
        WHEN problem IS NULL AND e.RecordType = 'SubscriptionChange' AND event_type IS NULL THEN
            'subscription change that is no unsubscribe by the recipient'
        ELSE event_problem(
            problem, record, e, 'Postmark', 'RecordType',
            CASE WHEN e.RecordType IS NOT NULL THEN concat_ws(' ', e.RecordType, e.Type) END,
            event_type, coalesce(e.Recipient, e.Email), event_time(time_text), time_text
        )
    END AS problem
FROM mapped
