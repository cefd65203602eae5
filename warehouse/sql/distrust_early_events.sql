-- An event dated earlier than its message was handed to the provider (messages.outcome_at, as
-- our dispatcher recorded it), by more than the clock-skew allowance (how far a provider's clock
-- may run behind ours: 5 minutes, below), cannot have happened then:
-- the provider's clock is wrong (often a local time written without its offset). What happened
-- still counts for the message's status, so the event is kept, with the time of receipt instead
-- (never before the hand-over) and time_problem naming the provider's time. Only events stored
-- after $since_seq and just joined to a message (`found_messages`, which link_events.sql leaves
-- with each message's hand-over time, so the messages are not read again) are looked at: no
-- other has a hand-over time to compare with. Then counts, per file, the new events with the
-- time of receipt (these, and bounce mail whose Date could not be believed: mail.sql).
UPDATE events SET
    occurred_at = greatest($received_at::TIMESTAMPTZ, found.outcome_at),
    time_problem = 'the provider''s time ' || strftime(events.occurred_at, '%Y-%m-%d %H:%M:%S UTC')
        || ' is before the message was handed to the provider at '
        || strftime(found.outcome_at, '%Y-%m-%d %H:%M:%S UTC')
        || '; stored with the time of receipt'
FROM found_messages AS found
WHERE events.seq > $since_seq
  AND events.seq = found.seq
  AND events.message_id = found.message_id  -- the message it was linked to, of those found
  AND events.occurred_at < found.outcome_at - INTERVAL 5 MINUTE;  -- the clock-skew allowance

SELECT source_file, count(*) AS retimed
FROM events
WHERE seq > $since_seq AND time_problem IS NOT NULL
GROUP BY source_file;
