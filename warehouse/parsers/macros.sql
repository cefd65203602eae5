-- Helpers shared by the provider parsers; created as temporary macros on the ingest connection.

-- A provider timestamp as UTC: ISO-8601 (with Z, an offset, or none meaning UTC, up to 7
-- fractional digits) or epoch seconds (int, float, or the same as a string). NULL if neither.
CREATE OR REPLACE TEMP MACRO event_time(value) AS (
    CASE
        WHEN regexp_full_match(trim(value), '-?[0-9]{1,12}(\.[0-9]+)?')
            THEN try(to_timestamp(trim(value)::DOUBLE))
        ELSE try_cast(trim(value) AS TIMESTAMPTZ)
    END
);

-- The sanity rule for event times, in one place. A time a provider states is believed only from
-- the floor below (no provider existed before it: an earlier time is a zero, a -1 epoch or a
-- corrupt field) to a day after the time of ingest (the transaction's start; a day is beyond any
-- time zone mistake, so a later time is a broken clock or a corrupt field). Not finite
-- ("Infinity") is never a time. NULL when the time is believable; else why not, naming the text.
CREATE OR REPLACE TEMP MACRO event_time_floor() AS TIMESTAMPTZ '2000-01-01 00:00:00+00';

CREATE OR REPLACE TEMP MACRO event_time_problem(moment, text) AS (
    CASE
        WHEN moment IS NULL THEN 'unparseable timestamp ' || coalesce('''' || text || '''', '(none)')
        WHEN NOT isfinite(moment) THEN 'impossible timestamp ''' || text || ''': not a finite time'
        WHEN moment < event_time_floor() THEN
            'impossible timestamp ''' || text || ''': before ' || strftime(event_time_floor(), '%Y-%m-%d')
        WHEN moment > current_timestamp + INTERVAL 1 DAY THEN
            'impossible timestamp ''' || text || ''': more than a day after its ingest at '
                || strftime(current_timestamp, '%Y-%m-%d %H:%M:%S UTC')
    END
);

-- The time of receipt (a file's modification time) as event_time_problem names it, for parsers
-- that fall back to it.
CREATE OR REPLACE TEMP MACRO file_time_text(received_at) AS (
    strftime(received_at::TIMESTAMPTZ, '%Y-%m-%dT%H:%M:%SZ') || ' (the file''s time)'
);

-- An email address as stored: the part inside <...> if present, trimmed and lower-cased.
CREATE OR REPLACE TEMP MACRO email_address(value) AS (
    nullif(lower(trim(coalesce(nullif(regexp_extract(value, '<([^<>]+)>', 1), ''), value))), '')
);

-- A phone number as stored: E.164 as Twilio sends it, without a channel prefix or spacing.
CREATE OR REPLACE TEMP MACRO phone_number(value) AS (
    nullif(regexp_replace(regexp_replace(trim(value), '^(whatsapp|sms):', ''), '[\s().-]', '', 'g'), '')
);

-- The SMTP enhanced status code (RFC 3463) inside a response or diagnostic text, if any.
CREATE OR REPLACE TEMP MACRO enhanced_status(value) AS (
    nullif(regexp_extract(value, '(^|[^0-9.])([245]\.[0-9]{1,3}\.[0-9]{1,3})($|[^0-9])', 2), '')
);

-- Why a record that did not parse as a JSON object was rejected.
CREATE OR REPLACE TEMP MACRO json_problem(record) AS (
    CASE WHEN json_valid(record) THEN 'not a JSON object' ELSE 'malformed JSON' END
);

-- Why a record of a provider that writes JSON events cannot become an event (NULL when it can),
-- in the order a person would fix them: what the reader found, the JSON, the field that names
-- the kind of event (`kind_field` as the reason says it), a kind we know, a recipient, a time
-- that can be true. One rule for SendGrid, Mailgun and Postmark.
CREATE OR REPLACE TEMP MACRO event_problem(
    reader_problem, record, e, provider, kind_field, kind, event_type, recipient, event_at,
    time_text
) AS (
    CASE
        WHEN reader_problem IS NOT NULL THEN reader_problem
        WHEN e IS NULL THEN json_problem(record)
        WHEN kind IS NULL THEN 'not a ' || provider || ' event: no ' || kind_field
        WHEN event_type IS NULL THEN 'unknown ' || provider || ' event type ''' || kind || ''''
        WHEN email_address(recipient) IS NULL THEN 'no recipient in the ' || provider || ' event'
        ELSE event_time_problem(event_at, time_text)
    END
);

-- True when the text at least starts like a JSON object (cheaper than parsing it twice).
CREATE OR REPLACE TEMP MACRO starts_as_object(record) AS (
    starts_with(ltrim(record), '{')
);

-- An event id for providers that give none: the same payload gives the same id, however it was
-- laid out (pretty-printed, in an array, on one line), because the JSON is minified first.
-- (The ::VARCHAR keeps coalesce from casting a malformed record to JSON, which would raise.)
CREATE OR REPLACE TEMP MACRO derived_event_id(record) AS (
    md5(coalesce(json(try_cast(record AS JSON))::VARCHAR, record))
);
