-- Bring the Unsubscribes list in line with what happened (DESIGN §6), appending changes only.
-- Every event, inbound keyword and manual change is a vote on an entry (channel, address,
-- reason); the latest vote decides whether the entry should be on the list. Where the list
-- says otherwise, one change is appended, citing the deciding vote. Deriving twice therefore
-- adds nothing, and a manual removal stands until something newer happens.
-- Only addresses with events or manual changes since $since are looked at (all when null).

CREATE OR REPLACE TEMP TABLE affected_addresses AS
SELECT DISTINCT channel, recipient AS address
FROM events
WHERE recipient IS NOT NULL AND ($since IS NULL OR ingested_at > $since)
UNION
SELECT DISTINCT channel, address
FROM unsubscribe_changes
WHERE cause = 'manual' AND ($since IS NULL OR changed_at > $since);

-- the events that can vote, of those addresses only, read from the big table once
CREATE OR REPLACE TEMP TABLE voting_events AS
SELECT channel, recipient, event_type, bounce_kind, provider, event_id, message_id,
       sendout_message_id, provider_message_id, occurred_at
FROM events
WHERE recipient IS NOT NULL
  AND event_type IN ('bounced', 'bad_email', 'bad_number', 'complaint', 'unsubscribed',
                     'skipped', 'delivered', 'opened', 'clicked')
  AND ($since IS NULL
       OR (channel, recipient) IN (SELECT (channel, address) FROM affected_addresses));

CREATE OR REPLACE TEMP TABLE unsubscribe_votes AS
WITH
event_votes AS (
    SELECT
        channel,
        recipient AS address,
        CASE
            WHEN event_type = 'bounced' THEN 'bounced'
            WHEN event_type = 'bad_email' THEN 'bad_email'
            WHEN event_type = 'bad_number' THEN 'bad_number'
            WHEN event_type = 'complaint' THEN 'complaint'
            WHEN event_type = 'unsubscribed' THEN 'unsubscribed'
            WHEN event_type = 'skipped' THEN 'provider_suppressed'
        END AS reason,
        'add' AS action,
        event_type AS cause,
        event_id AS cause_event_id,
        message_id,
        occurred_at AS effective_at
    FROM voting_events
    WHERE ((event_type = 'bounced' AND bounce_kind = 'hard')
           OR event_type IN ('bad_email', 'bad_number', 'complaint', 'unsubscribed')
           -- our own sender's skips come from this very list; only a provider's are news
           OR (event_type = 'skipped' AND provider <> 'smtp'))
),

keyword_votes AS (
    SELECT
        'sms' AS channel,
        from_number AS address,
        'stop_reply' AS reason,
        CASE keyword WHEN 'stop' THEN 'add' ELSE 'remove' END AS action,
        'reply ' || upper(trim(body)) AS cause,
        event_id AS cause_event_id,
        message_id,
        received_at AS effective_at
    FROM inbound_messages
    SEMI JOIN affected_addresses
        ON affected_addresses.channel = 'sms' AND affected_addresses.address = from_number
    WHERE keyword IN ('stop', 'start')
),

-- soft bounces of distinct messages to one address, counted since its last delivery
soft_candidates AS (
    SELECT channel, recipient
    FROM voting_events
    WHERE event_type = 'bounced' AND bounce_kind = 'soft'
    GROUP BY channel, recipient
    HAVING count(*) >= $streak
),

outcomes AS (
    SELECT
        channel, recipient, event_type, event_id, message_id, occurred_at,
        coalesce(message_id, sendout_message_id, provider_message_id, event_id) AS message_key,
        sum(CASE WHEN event_type = 'bounced' THEN 0 ELSE 1 END) OVER (
            PARTITION BY channel, recipient
            ORDER BY occurred_at, event_id
            ROWS UNBOUNDED PRECEDING
        ) AS since_delivery
    FROM voting_events
    SEMI JOIN soft_candidates USING (channel, recipient)
    WHERE (event_type = 'bounced' AND bounce_kind = 'soft')
       OR event_type IN ('delivered', 'opened', 'clicked')
),

streak_bounces AS (
    SELECT
        channel, recipient, since_delivery, message_key,
        min(occurred_at) AS first_at,
        arg_min(event_id, occurred_at) AS event_id,
        arg_min(message_id, occurred_at) AS message_id
    FROM outcomes
    WHERE event_type = 'bounced'
    GROUP BY channel, recipient, since_delivery, message_key
),

streak_votes AS (
    SELECT
        channel,
        recipient AS address,
        'repeated_soft_bounce' AS reason,
        'add' AS action,
        $streak || ' soft bounces in a row' AS cause,
        event_id AS cause_event_id,
        message_id,
        first_at AS effective_at
    FROM streak_bounces
    QUALIFY row_number() OVER (
        PARTITION BY channel, recipient, since_delivery ORDER BY first_at, message_key
    ) = $streak
),

manual_votes AS (
    SELECT channel, address, reason, action, cause, cause_event_id, message_id, effective_at
    FROM unsubscribe_changes
    SEMI JOIN affected_addresses USING (channel, address)
    WHERE cause = 'manual'
)

SELECT *, false AS is_manual FROM event_votes
UNION ALL SELECT *, false FROM keyword_votes
UNION ALL SELECT *, false FROM streak_votes
UNION ALL SELECT *, true FROM manual_votes;

INSERT INTO unsubscribe_changes (
    channel, address, reason, action, scope, sendout_id, message_id, cause, cause_event_id,
    changed_by, effective_at
)
WITH
decided AS (
    SELECT *
    FROM unsubscribe_votes
    QUALIFY row_number() OVER (
        PARTITION BY channel, address, reason
        ORDER BY effective_at DESC, is_manual DESC, cause_event_id DESC
    ) = 1
),

listed AS (
    SELECT channel, address, reason, action
    FROM unsubscribe_changes
    SEMI JOIN affected_addresses USING (channel, address)
    QUALIFY row_number() OVER (
        PARTITION BY channel, address, reason ORDER BY effective_at DESC, change_id DESC
    ) = 1
)

SELECT
    decided.channel,
    decided.address,
    decided.reason,
    decided.action,
    CASE WHEN decided.reason = 'unsubscribed' THEN 'marketing' ELSE 'all' END AS scope,
    messages.sendout_id,
    decided.message_id,
    decided.cause,
    decided.cause_event_id,
    'sendout' AS changed_by,
    decided.effective_at
FROM decided
LEFT JOIN listed USING (channel, address, reason)
LEFT JOIN messages USING (message_id)
WHERE NOT decided.is_manual
  AND decided.action <> coalesce(listed.action, 'remove')
ORDER BY decided.effective_at, decided.channel, decided.address, decided.reason;
