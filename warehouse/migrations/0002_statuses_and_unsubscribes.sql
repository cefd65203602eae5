-- What users read: final statuses, send-out summaries, inbound SMS, and the Unsubscribes list.

-- Reply handling of a send-out's SMS (else the global settings apply).
ALTER TABLE sendouts ADD COLUMN forward_to VARCHAR;
ALTER TABLE sendouts ADD COLUMN auto_reply_text VARCHAR;
-- The SMS text as sent to this recipient (personalised), for segment counting and billing.
ALTER TABLE messages ADD COLUMN sms_text VARCHAR;

-- One row per message: its final status by rank (DESIGN §4), engagement, and what it cost.
CREATE TABLE message_status (
    message_id            VARCHAR NOT NULL,
    sendout_id            VARCHAR NOT NULL,
    channel               VARCHAR NOT NULL,
    recipient             VARCHAR NOT NULL,
    status                VARCHAR NOT NULL,
    is_opened             BOOLEAN NOT NULL,
    is_clicked            BOOLEAN NOT NULL,
    open_count            INTEGER NOT NULL,
    click_count           INTEGER NOT NULL,
    first_sent_at         TIMESTAMPTZ,
    delivered_at          TIMESTAMPTZ,
    first_opened_at       TIMESTAMPTZ,
    first_clicked_at      TIMESTAMPTZ,
    is_machine_open_only  BOOLEAN NOT NULL,
    bounce_kind           VARCHAR,
    has_unsubscribed      BOOLEAN NOT NULL,
    has_complained        BOOLEAN NOT NULL,
    billable_units        INTEGER NOT NULL,
    cost                  DOUBLE NOT NULL,
    refreshed_at          TIMESTAMPTZ NOT NULL
);

-- One row per (send-out, channel): counts by display status, progress, rates and cost.
-- The send-out's own status depends on the clock, so the view sendout_summary adds it.
CREATE TABLE sendout_channel_stats (
    sendout_id          VARCHAR NOT NULL,
    channel             VARCHAR NOT NULL,
    planned             INTEGER NOT NULL,
    done                INTEGER NOT NULL,
    queued              INTEGER NOT NULL,
    skipped             INTEGER NOT NULL,
    sent                INTEGER NOT NULL,
    delivered           INTEGER NOT NULL,
    bounced             INTEGER NOT NULL,
    complaint           INTEGER NOT NULL,
    bad_number          INTEGER NOT NULL,
    bad_email           INTEGER NOT NULL,
    opened              INTEGER NOT NULL,
    clicked             INTEGER NOT NULL,
    failed              INTEGER NOT NULL,
    accepted            INTEGER NOT NULL,
    unique_opened       INTEGER NOT NULL,
    unique_human_opened INTEGER NOT NULL,
    unique_clicked      INTEGER NOT NULL,
    open_rate           DOUBLE,
    human_open_rate     DOUBLE,
    click_rate          DOUBLE,
    click_to_open_rate  DOUBLE,
    inbound             INTEGER NOT NULL,
    cost                DOUBLE NOT NULL,
    first_sent_at       TIMESTAMPTZ,
    first_delivered_at  TIMESTAMPTZ,
    PRIMARY KEY (sendout_id, channel)
);

-- One row per received SMS: what it asks, which send-out it answers, and what we did with it.
CREATE TABLE inbound_messages (
    event_id          VARCHAR PRIMARY KEY,
    received_at       TIMESTAMPTZ NOT NULL,
    from_number       VARCHAR NOT NULL,
    body              VARCHAR,
    keyword           VARCHAR NOT NULL,
    status            VARCHAR NOT NULL,
    message_id        VARCHAR,
    sendout_id        VARCHAR,
    forwarded_at      TIMESTAMPTZ,
    replied_at        TIMESTAMPTZ,
    forward_to        VARCHAR,
    auto_reply_text   VARCHAR,
    billable_units    INTEGER NOT NULL,
    cost              DOUBLE NOT NULL
);

-- Append-only history of the Unsubscribes list: one row per change (add or remove) of an entry
-- (channel, address, reason). Nothing is updated or deleted, so every state can be explained.
CREATE SEQUENCE unsubscribe_changes_id_seq START 1;
CREATE TABLE unsubscribe_changes (
    change_id      BIGINT PRIMARY KEY DEFAULT nextval('unsubscribe_changes_id_seq'),
    channel        VARCHAR NOT NULL,
    address        VARCHAR NOT NULL,
    reason         VARCHAR NOT NULL,
    action         VARCHAR NOT NULL,
    scope          VARCHAR NOT NULL,
    sendout_id     VARCHAR,
    message_id     VARCHAR,
    cause          VARCHAR NOT NULL,
    cause_event_id VARCHAR,
    changed_by     VARCHAR NOT NULL,
    note           VARCHAR,
    effective_at   TIMESTAMPTZ NOT NULL,
    changed_at     TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

-- The current list: one row per active entry (channel, address, reason), from the latest change.
CREATE VIEW unsubscribes AS
SELECT channel, address, reason, scope, sendout_id, message_id, cause, cause_event_id,
       changed_by AS added_by, note, effective_at AS added_at, change_id
FROM unsubscribe_changes
QUALIFY row_number() OVER (PARTITION BY channel, address, reason
                           ORDER BY effective_at DESC, change_id DESC) = 1
    AND action = 'add';

-- What the last refresh covered, so that the next one reads only what is new.
CREATE TABLE refresh_state (
    name        VARCHAR PRIMARY KEY,
    watermark   TIMESTAMPTZ NOT NULL,
    refreshed_at TIMESTAMPTZ NOT NULL
);

-- One row per (send-out, channel) with the send-out's own status as of now (DESIGN §5).
-- Every send-out is listed, also before its messages exist (a scheduled one): its counts are
-- null until then.
CREATE VIEW sendout_summary AS
WITH
planned_channels AS (
    SELECT sendout_id, unnest(channels) AS channel FROM sendouts
),

overall AS (
    SELECT sendout_id, min(first_sent_at) AS sent_at, min(first_delivered_at) AS delivered_at
    FROM sendout_channel_stats
    GROUP BY sendout_id
)

SELECT
    planned_channels.sendout_id,
    planned_channels.channel,
    sendouts.name,
    sendouts.communication_type,
    sendouts.created_at,
    sendouts.scheduled_at,
    sendouts.cancelled_at,
    CASE
        WHEN sendouts.cancelled_at IS NOT NULL THEN 'Cancelled'
        WHEN overall.delivered_at IS NOT NULL THEN 'Delivered'
        WHEN overall.sent_at IS NOT NULL THEN 'Sent'
        WHEN sendouts.scheduled_at > current_timestamp THEN 'Scheduled'
        ELSE 'Sending...'
    END AS sendout_status,
    overall.sent_at AS sendout_sent_at,
    overall.delivered_at AS sendout_delivered_at,
    COLUMNS(stats.* EXCLUDE (sendout_id, channel))
FROM planned_channels
JOIN sendouts USING (sendout_id)
LEFT JOIN sendout_channel_stats AS stats USING (sendout_id, channel)
LEFT JOIN overall USING (sendout_id);
