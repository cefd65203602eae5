-- Amazon SES: event publishing records (`eventType`) and legacy notifications
-- (`notificationType`), bare (Firehose NDJSON, one per line) or inside an SNS envelope whose
-- `Message` is the record as a JSON string.
-- In: records(source_line, record, problem). Out: one row per (record, recipient) with the
-- canonical columns, or one row per unusable record with `problem` set.

CREATE OR REPLACE TEMP MACRO ses_record(record) AS try(from_json(record, '{
    "Type": "VARCHAR", "MessageId": "VARCHAR", "Message": "VARCHAR", "SubscribeURL": "VARCHAR",
    "eventType": "VARCHAR", "notificationType": "VARCHAR",
    "mail": {"timestamp": "VARCHAR", "messageId": "VARCHAR", "destination": ["VARCHAR"],
             "tags": {"sendout_message_id": ["VARCHAR"]}},
    "bounce": {"bounceType": "VARCHAR", "bounceSubType": "VARCHAR", "timestamp": "VARCHAR",
               "bouncedRecipients": [{"emailAddress": "VARCHAR", "action": "VARCHAR",
                                      "status": "VARCHAR", "diagnosticCode": "VARCHAR"}]},
    "complaint": {"complaintFeedbackType": "VARCHAR", "complaintSubType": "VARCHAR",
                  "timestamp": "VARCHAR", "complainedRecipients": [{"emailAddress": "VARCHAR"}]},
    "delivery": {"timestamp": "VARCHAR", "recipients": ["VARCHAR"], "smtpResponse": "VARCHAR"},
    "send": "JSON",
    "open": {"timestamp": "VARCHAR", "userAgent": "VARCHAR"},
    "click": {"timestamp": "VARCHAR", "link": "VARCHAR"},
    "reject": {"reason": "VARCHAR"},
    "failure": {"errorMessage": "VARCHAR", "templateName": "VARCHAR"},
    "deliveryDelay": {"timestamp": "VARCHAR", "delayType": "VARCHAR",
                      "delayedRecipients": [{"emailAddress": "VARCHAR", "status": "VARCHAR",
                                             "diagnosticCode": "VARCHAR"}]},
    "subscription": {"timestamp": "VARCHAR",
                     "newTopicPreferences": {"unsubscribeAll": "BOOLEAN",
                         "topicSubscriptionStatus": [{"topicName": "VARCHAR",
                                                      "subscriptionStatus": "VARCHAR"}]}}
}'));

WITH
outer_records AS (
    SELECT source_line, record, problem,
        CASE WHEN problem IS NULL AND starts_as_object(record) THEN ses_record(record) END AS r
    FROM records
),

-- an SNS notification carries the SES record as a string; everything else is the record itself
unwrapped AS (
    SELECT source_line, record, problem, r.Type AS sns_type, r.SubscribeURL AS subscribe_url,
        CASE WHEN r.Type = 'Notification' THEN r.MessageId END AS sns_message_id,
        CASE WHEN r.Type = 'Notification' THEN r.Message ELSE record END AS event_text,
        CASE WHEN r.Type = 'Notification' THEN ses_record(r.Message) ELSE r END AS e
    FROM outer_records
),

-- everything that does not depend on the recipient, computed once per record
per_record AS (
    SELECT
        source_line,
        record,
        problem,
        sns_type,
        subscribe_url,
        e IS NULL AS is_unreadable,
        coalesce(e.eventType, e.notificationType) AS kind,
        coalesce(sns_message_id, CASE WHEN e IS NOT NULL THEN derived_event_id(event_text) END)
            AS base_id,
        e.mail.tags.sendout_message_id[1] AS sendout_message_id,
        e.mail.messageId AS provider_message_id,
        e.bounce.bounceType AS bounce_type,
        e.bounce.bounceSubType AS bounce_subtype,
        e.deliveryDelay.delayType AS delay_type,
        CASE kind
            WHEN 'Send' THEN 'queued'
            WHEN 'Reject' THEN 'failed'
            WHEN 'Rendering Failure' THEN 'failed'
            WHEN 'Delivery' THEN 'delivered'
            WHEN 'DeliveryDelay' THEN 'deferred'
            WHEN 'Open' THEN 'opened'
            WHEN 'Click' THEN 'clicked'
            WHEN 'Complaint' THEN
                CASE
                    WHEN e.complaint.complaintSubType = 'OnAccountSuppressionList' THEN 'skipped'
                    WHEN e.complaint.complaintFeedbackType = 'not-spam' THEN NULL
                    ELSE 'complaint'
                END
            WHEN 'Subscription' THEN
                CASE
                    WHEN e.subscription.newTopicPreferences.unsubscribeAll
                        OR list_bool_or(list_transform(
                            e.subscription.newTopicPreferences.topicSubscriptionStatus,
                            lambda t: t.subscriptionStatus = 'OptOut'))
                        THEN 'unsubscribed'
                END
        END AS record_event_type,
        coalesce(CASE kind
            WHEN 'Bounce' THEN e.bounce.timestamp
            WHEN 'Complaint' THEN e.complaint.timestamp
            WHEN 'Delivery' THEN e.delivery.timestamp
            WHEN 'DeliveryDelay' THEN e.deliveryDelay.timestamp
            WHEN 'Open' THEN e.open.timestamp
            WHEN 'Click' THEN e.click.timestamp
            WHEN 'Subscription' THEN e.subscription.timestamp
        END, e.mail.timestamp) AS time_text,
        event_time(time_text) AS occurred_at,
        CASE WHEN kind = 'Click' THEN e.click.link END AS url,
        coalesce(
            e.delivery.smtpResponse, e.reject.reason, e.failure.errorMessage,
            e.deliveryDelay.delayType,
            CASE WHEN kind = 'Bounce' THEN concat_ws(' ', bounce_type, bounce_subtype) END
        ) AS record_reason,
        CASE kind
            WHEN 'Bounce' THEN list_transform(e.bounce.bouncedRecipients, lambda x: {
                'address': x.emailAddress, 'action': x.action, 'status': x.status,
                'diagnostic': x.diagnosticCode})
            WHEN 'Complaint' THEN list_transform(e.complaint.complainedRecipients, lambda x: {
                'address': x.emailAddress, 'action': NULL::VARCHAR, 'status': NULL::VARCHAR,
                'diagnostic': NULL::VARCHAR})
            WHEN 'Delivery' THEN list_transform(e.delivery.recipients, lambda x: {
                'address': x, 'action': NULL::VARCHAR, 'status': NULL::VARCHAR,
                'diagnostic': NULL::VARCHAR})
            WHEN 'DeliveryDelay' THEN list_transform(e.deliveryDelay.delayedRecipients, lambda x: {
                'address': x.emailAddress, 'action': 'delayed', 'status': x.status,
                'diagnostic': x.diagnosticCode})
            ELSE list_transform(e.mail.destination, lambda x: {
                'address': x, 'action': NULL::VARCHAR, 'status': NULL::VARCHAR,
                'diagnostic': NULL::VARCHAR})
        END AS recipients
    FROM unwrapped
),

per_recipient AS (
    SELECT * EXCLUDE (recipients),
        unnest(CASE WHEN len(recipients) > 0 THEN recipients ELSE [NULL] END) AS rcpt
    FROM per_record
),

judged AS (
    SELECT *,
        email_address(rcpt.address) AS recipient,
        coalesce(rcpt.status, enhanced_status(rcpt.diagnostic)) AS status_code,
        -- each recipient's own action counts: one bounce notification may hold a delay
        CASE WHEN kind IN ('Bounce', 'DeliveryDelay') THEN classify_failure(
            CASE
                WHEN rcpt.action IN ('delayed', 'delivered') THEN rcpt.action
                WHEN rcpt.action = 'relayed' THEN 'delivered'
                WHEN bounce_type = 'Permanent' THEN 'failed'
                ELSE 'gave_up'  -- Transient and Undetermined: SES stopped trying
            END,
            status_code,
            smtp_reply_code(rcpt.diagnostic),
            rcpt.diagnostic,
            'ses:' || coalesce(bounce_subtype, delay_type)
        ) END AS verdict
    FROM per_recipient
),

mapped AS (
    SELECT *,
        CASE
            WHEN kind NOT IN ('Bounce', 'DeliveryDelay') THEN record_event_type
            WHEN bounce_subtype IN ('Suppressed', 'OnAccountSuppressionList') THEN 'skipped'
            ELSE verdict.event_type
        END AS event_type
    FROM judged
)

SELECT
    source_line,
    base_id || ':' || coalesce(recipient, '') AS event_id,
    event_type,
    sendout_message_id,
    provider_message_id,
    recipient,
    occurred_at,
    false AS is_machine_open,
    url,
    CASE WHEN event_type IN ('bounced', 'bad_email') THEN verdict.bounce_kind END AS bounce_kind,
    status_code,
    CASE WHEN event_type IN ('bounced', 'bad_email', 'deferred') THEN verdict.bounce_reason END
        AS bounce_reason,
    coalesce(rcpt.diagnostic, record_reason) AS reason,
    NULL::VARCHAR AS body,
    record AS payload,
    NULL::VARCHAR AS time_problem,
    CASE
        WHEN problem IS NOT NULL THEN problem
        WHEN is_unreadable THEN json_problem(record)
        WHEN sns_type IS NOT NULL AND sns_type <> 'Notification' THEN
            'SNS ' || sns_type || ' is not an event; confirm the subscription at '
                || coalesce(subscribe_url, '?')
        WHEN kind IS NULL THEN 'not an SES record: no eventType or notificationType'
        WHEN kind = 'Complaint' AND event_type IS NULL THEN
            'complaint feedback type not-spam is not a complaint'
        WHEN kind = 'Subscription' AND event_type IS NULL THEN
            'subscription change that is no opt-out'
        WHEN event_type IS NULL THEN 'unknown SES event type ''' || kind || ''''
        WHEN recipient IS NULL THEN 'no recipient in the SES record'
        ELSE event_time_problem(occurred_at, time_text)
    END AS problem
FROM mapped
