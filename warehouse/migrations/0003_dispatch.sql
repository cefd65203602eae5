-- Dispatch state (DESIGN §8): each message is claimed before the provider call and its outcome
-- recorded after it; a send-out is dispatched by one run at a time, which holds a lease.
ALTER TABLE messages ADD COLUMN claimed_at TIMESTAMPTZ;
ALTER TABLE messages ADD COLUMN claimed_by VARCHAR;
ALTER TABLE messages ADD COLUMN attempts INTEGER DEFAULT 0;
ALTER TABLE messages ADD COLUMN outcome VARCHAR;
ALTER TABLE messages ADD COLUMN outcome_at TIMESTAMPTZ;
-- claimed again after a crash while in flight: it may have been sent twice
ALTER TABLE messages ADD COLUMN is_possible_duplicate BOOLEAN DEFAULT false;

ALTER TABLE sendouts ADD COLUMN started_at TIMESTAMPTZ;
ALTER TABLE sendouts ADD COLUMN finished_at TIMESTAMPTZ;
ALTER TABLE sendouts ADD COLUMN dispatch_run VARCHAR;
ALTER TABLE sendouts ADD COLUMN dispatch_heartbeat_at TIMESTAMPTZ;
