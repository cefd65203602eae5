-- One truth, live (DESIGN §5, §9): message_status keeps what it needs to take in new events
-- without rereading old ones, and every event carries the order it was stored in, so each
-- refresh folds in exactly the events stored since the last one, whoever stored them.

-- the order events were stored in: refresh_state.folded_seq says how far statuses have read
CREATE SEQUENCE events_seq START 1;
ALTER TABLE events ADD COLUMN seq BIGINT DEFAULT nextval('events_seq');
ALTER TABLE refresh_state ADD COLUMN folded_seq BIGINT;

-- md5_number_lower(event_id), a hash that stays the same across DuckDB releases: the duplicate
-- check on ingest probes this column of numbers first and compares ids only where it matches
-- (reading every stored id cost 60-80 ms a file at 5M events). Everything that stores events
-- sets it.
ALTER TABLE events ADD COLUMN event_hash UBIGINT;
UPDATE events SET event_hash = md5_number_lower(event_id);

-- the highest-ranked event and its bounce kind as one number (warehouse.status.message_outcomes),
-- and how many of the opens were machines': with the counts and first times already there,
-- this is all a message's status needs to take in new events
ALTER TABLE message_status ADD COLUMN top_key INTEGER;
ALTER TABLE message_status ADD COLUMN machine_open_count INTEGER NOT NULL DEFAULT 0;
-- how many segments an SMS's text is billed as (null for email): with the ids, channel and
-- recipient, what a status needs of its message, so refresh reads `messages` only for new ones
ALTER TABLE message_status ADD COLUMN sms_segments INTEGER;

-- statuses computed before this migration lack both: the next refresh rebuilds them all
DELETE FROM refresh_state;


-- One row per (send-out, channel, status, has_outcome, is_opened, is_clicked,
-- is_machine_open_only): how many messages are in each combination the figures count, their
-- cost and earliest times. Refresh moves the messages it recomputes between these rows, so a
-- send-out's figures never need all its messages read again (warehouse.status.move_groups).
CREATE TABLE sendout_status_groups (
    sendout_id            VARCHAR NOT NULL,
    channel               VARCHAR NOT NULL,
    status                VARCHAR NOT NULL,
    has_outcome           BOOLEAN NOT NULL,
    is_opened             BOOLEAN NOT NULL,
    is_clicked            BOOLEAN NOT NULL,
    is_machine_open_only  BOOLEAN NOT NULL,
    messages              BIGINT NOT NULL,
    cost                  DOUBLE NOT NULL,
    first_sent_at         TIMESTAMPTZ,
    delivered_at          TIMESTAMPTZ
);

-- how many people a send-out is for (a person with an email and a mobile gets two messages of
-- a send-out on both channels): set when its messages are created
ALTER TABLE sendouts ADD COLUMN recipients INTEGER;
UPDATE sendouts SET recipients = (
    SELECT count(DISTINCT contact_id) FROM messages WHERE messages.sendout_id = sendouts.sendout_id
);
