-- Store the staged events of one batch that are new: the first of each event_id within the
-- batch (by its row number, so the wide rows are not sorted), and none whose (provider, event_id) is
-- already in events. Stored events are looked up by the hash of their id first (a column of
-- numbers), then compared by id. Returns the file of each event stored.
INSERT INTO events BY NAME
WITH
firsts AS (
    SELECT event_id, min(staged_row) AS first_row
    FROM staged
    WHERE problem IS NULL
    GROUP BY event_id
),

stored AS (
    SELECT event_id
    FROM events
    WHERE event_hash IN (SELECT md5_number_lower(event_id) FROM firsts) AND provider = $provider
),

unseen AS (
    SELECT first_row
    FROM firsts
    ANTI JOIN stored USING (event_id)
)

SELECT
    event_id,
    $provider AS provider,
    $channel AS channel,
    event_type,
    NULL::VARCHAR AS message_id,
    sendout_message_id,
    provider_message_id,
    recipient,
    occurred_at,
    is_machine_open,
    url,
    bounce_kind,
    status_code,
    bounce_reason,
    reason,
    body,
    payload,
    time_problem,
    md5_number_lower(event_id) AS event_hash,
    source_file,
    source_line,
    $ingested_at::TIMESTAMPTZ AS ingested_at
FROM staged
SEMI JOIN unseen ON staged.staged_row = unseen.first_row
RETURNING source_file
