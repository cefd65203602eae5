-- Who may use the dashboard, how hard someone is guessing passwords, and a record of who did
-- what (docs/dashboard.md: logins, roles and the audit record).

-- One row per person who may log in to the dashboard. role: viewer, sender or admin.
-- password_hash is Argon2id (argon2-cffi's encoded form); null for a person who logs in through
-- the organisation's identity provider (OpenID Connect), whose user_name is their email.
CREATE TABLE users (
    user_name            VARCHAR PRIMARY KEY,
    role                 VARCHAR NOT NULL,
    password_hash        VARCHAR,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    password_changed_at  TIMESTAMPTZ
);

-- One row per throttle key: 'user:<name>' for the attempts at one user name (known or not),
-- and '*' for every attempt. A key's failures count since its last success (a name) or since
-- its failures stopped for a while (all); the next attempt must wait until blocked_until.
CREATE TABLE login_throttles (
    throttle_key     VARCHAR PRIMARY KEY,
    failures         INTEGER NOT NULL,
    last_failed_at   TIMESTAMPTZ NOT NULL,
    blocked_until    TIMESTAMPTZ NOT NULL
);

-- One row per action a person took in the dashboard or the CLI, appended, never changed:
-- who (the logged-in user, else the operating-system user or $SENDOUT_USER), when, through
-- what, what they did (action), to what (subject: a send-out id, an address, a user name) and
-- what changed, in words.
CREATE SEQUENCE audit_entries_id_seq START 1;
CREATE TABLE audit_entries (
    entry_id     BIGINT PRIMARY KEY DEFAULT nextval('audit_entries_id_seq'),
    done_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    done_by      VARCHAR NOT NULL,
    via          VARCHAR NOT NULL,
    action       VARCHAR NOT NULL,
    subject      VARCHAR,
    detail       VARCHAR
);
