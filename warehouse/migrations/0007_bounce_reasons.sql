-- Why a delivery failed, from one vocabulary (warehouse.vocabulary.BounceReason), decided by the
-- one classifier (warehouse/parsers/classify.sql) from all the evidence. `reason` keeps the
-- reporter's own words (the diagnostic text). Events stored before this migration keep a null
-- reason.
ALTER TABLE events ADD COLUMN bounce_reason VARCHAR;

-- the reason of the event that set the message's status (null unless it failed or was delayed)
ALTER TABLE message_status ADD COLUMN bounce_reason VARCHAR;
