-- The first warehouse: people, send-outs, messages, what providers reported, and what was read.
-- Times are UTC (TIMESTAMPTZ); every table states its grain.

-- One row per person we can message. Email is trimmed and lower-cased, mobile is E.164.
CREATE SEQUENCE contacts_contact_id_seq START 1;
CREATE TABLE contacts (
    contact_id  BIGINT PRIMARY KEY DEFAULT nextval('contacts_contact_id_seq'),
    first_name  VARCHAR,
    last_name   VARCHAR,
    email       VARCHAR,
    mobile      VARCHAR,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

-- One row per send-out: one piece of content sent to a set of recipients on one or two channels.
CREATE TABLE sendouts (
    sendout_id          VARCHAR PRIMARY KEY,
    name                VARCHAR NOT NULL,
    channels            VARCHAR[] NOT NULL,
    communication_type  VARCHAR NOT NULL,
    subject             VARCHAR,
    html_body           VARCHAR,
    text_body           VARCHAR,
    sms_text            VARCHAR,
    sender              VARCHAR,
    scheduled_at        TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    cancelled_at        TIMESTAMPTZ,
    resend_of           VARCHAR
);

-- One row per (send-out, recipient, channel): the message we send, created once.
CREATE TABLE messages (
    message_id           VARCHAR PRIMARY KEY,
    sendout_id           VARCHAR NOT NULL,
    contact_id           BIGINT,
    channel              VARCHAR NOT NULL,
    recipient            VARCHAR NOT NULL,
    provider             VARCHAR,
    provider_message_id  VARCHAR,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    UNIQUE (sendout_id, contact_id, channel)
);

-- One row per distinct provider event (provider, event_id), mapped to the canonical vocabulary.
-- message_id is null until the event joins one of our messages (it may arrive first).
CREATE TABLE events (
    event_id             VARCHAR NOT NULL,
    provider             VARCHAR NOT NULL,
    channel              VARCHAR NOT NULL,
    event_type           VARCHAR NOT NULL,
    message_id           VARCHAR,
    sendout_message_id   VARCHAR,
    provider_message_id  VARCHAR,
    recipient            VARCHAR,
    occurred_at          TIMESTAMPTZ NOT NULL,
    is_machine_open      BOOLEAN NOT NULL DEFAULT false,
    url                  VARCHAR,
    bounce_kind          VARCHAR,
    status_code          VARCHAR,
    reason               VARCHAR,
    body                 VARCHAR,
    payload              VARCHAR NOT NULL USING COMPRESSION zstd,
    source_file          VARCHAR NOT NULL,
    source_line          BIGINT NOT NULL,
    ingested_at          TIMESTAMPTZ NOT NULL
);

-- One row per provider file read, by content hash: a file with the same bytes is read once.
CREATE TABLE ingested_files (
    file_hash         VARCHAR NOT NULL,
    path              VARCHAR NOT NULL,
    provider          VARCHAR,
    size_bytes        BIGINT NOT NULL,
    records           BIGINT NOT NULL,
    events_new        BIGINT NOT NULL,
    events_duplicate  BIGINT NOT NULL,
    quarantined       BIGINT NOT NULL,
    ingested_at       TIMESTAMPTZ NOT NULL
);

-- One row per record (line or array element) that could not become an event, with why.
CREATE SEQUENCE quarantine_id_seq START 1;
CREATE TABLE quarantine (
    quarantine_id   BIGINT PRIMARY KEY DEFAULT nextval('quarantine_id_seq'),
    source_file     VARCHAR NOT NULL,
    file_hash       VARCHAR NOT NULL,
    source_line     BIGINT,
    provider        VARCHAR,
    reason          VARCHAR NOT NULL,
    raw             VARCHAR USING COMPRESSION zstd,
    quarantined_at  TIMESTAMPTZ NOT NULL
);
