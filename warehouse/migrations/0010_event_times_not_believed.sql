-- An event whose provider's time is not believed (dated before its message was handed to the
-- provider, beyond the clock-skew allowance: docs/ingest.md) is stored with the time of receipt;
-- time_problem says so and names the provider's own time. Null: occurred_at is the provider's.
ALTER TABLE events ADD COLUMN time_problem VARCHAR;
