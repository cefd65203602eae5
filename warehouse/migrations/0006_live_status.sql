-- One truth, live (DESIGN §5, §9): message_status keeps what it needs to take in new events
-- without rereading old ones, and every event carries the order it was stored in, so each
-- refresh folds in exactly the events stored since the last one, whoever stored them.

-- the order events were stored in: refresh_state.folded_seq says how far statuses have read
CREATE SEQUENCE events_seq START 1;
ALTER TABLE events ADD COLUMN seq BIGINT DEFAULT nextval('events_seq');
ALTER TABLE refresh_state ADD COLUMN folded_seq BIGINT;

-- the highest-ranked event and its bounce kind as one number (warehouse.status.message_outcomes),
-- and how many of the opens were machines': with the counts and first times already there,
-- this is all a message's status needs to take in new events
ALTER TABLE message_status ADD COLUMN top_key INTEGER;
ALTER TABLE message_status ADD COLUMN machine_open_count INTEGER NOT NULL DEFAULT 0;

-- statuses computed before this migration lack both: the next refresh rebuilds them all
DELETE FROM refresh_state;

