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
