-- Bring the Unsubscribes list in line with what happened (DESIGN §6), appending changes only.
-- Every event and inbound keyword is a vote on an entry (channel, address, reason). The latest
-- vote decides whether the entry should be on the list; the entry's latest change (automatic or
-- manual) is itself a vote, since it settled everything older. Where a newer vote disagrees
-- with the list, one change is appended citing it. So deriving twice adds nothing, a manual
-- removal stands until something newer happens, and only events stored after $since_seq (all
-- when null) need to be read.

CREATE OR REPLACE TEMP TABLE unsubscribe_votes AS
WITH
new_events AS (
    SELECT channel, recipient, event_type, bounce_kind, provider, event_id, message_id,
           occurred_at
    FROM events
    WHERE recipient IS NOT NULL AND ($since_seq IS NULL OR seq > $since_seq)
      -- the events that vote (below): deliveries, opens and clicks only break streaks
      AND event_type IN ('bounced', 'bad_email', 'bad_number', 'complaint', 'unsubscribed',
                         'skipped')
      -- bounce mail for a message we never sent is backscatter: kept, never listed
      AND NOT (provider = 'mail' AND message_id IS NULL)
),

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
    FROM new_events
    WHERE (event_type = 'bounced' AND bounce_kind = 'hard')
       OR event_type IN ('bad_email', 'bad_number', 'complaint', 'unsubscribed')
       -- dispatch's own skips come from this very list; only a provider's are news
       OR (event_type = 'skipped' AND provider <> 'sendout')
),

-- inbound_messages is small and rebuilt by refresh: all of its keywords vote every time
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
    WHERE keyword IN ('stop', 'start')
),

-- soft bounces of distinct messages to one address, counted since its last delivery; only
-- addresses with a new soft bounce, and soft bounces of $streak messages or more in all, have
-- their history read (most addresses that ever bounce softly do it once)
soft_candidates AS (
    SELECT channel, recipient
    FROM events
    SEMI JOIN (
        SELECT channel, recipient FROM new_events
        WHERE event_type = 'bounced' AND bounce_kind = 'soft'
    ) USING (channel, recipient)
    WHERE event_type = 'bounced' AND bounce_kind = 'soft'
    GROUP BY channel, recipient
    HAVING count(DISTINCT coalesce(message_id, sendout_message_id, provider_message_id, event_id))
        >= $streak
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
    FROM events
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
)

SELECT * FROM event_votes
UNION ALL SELECT * FROM keyword_votes
UNION ALL SELECT * FROM streak_votes;

INSERT INTO unsubscribe_changes (
    channel, address, reason, action, scope, sendout_id, message_id, cause, cause_event_id,
    changed_by, effective_at
)
WITH
listed AS (
    SELECT channel, address, reason, action, effective_at, cause_event_id
    FROM unsubscribe_changes
    SEMI JOIN unsubscribe_votes USING (channel, address, reason)
    QUALIFY row_number() OVER (
        PARTITION BY channel, address, reason ORDER BY effective_at DESC, change_id DESC
    ) = 1
),

ballots AS (
    SELECT *, false AS is_listed FROM unsubscribe_votes
    UNION ALL
    SELECT channel, address, reason, action, NULL, cause_event_id, NULL, effective_at, true
    FROM listed
),

-- on a tie the list's own state wins: that vote was counted already
decided AS (
    SELECT *
    FROM ballots
    QUALIFY row_number() OVER (
        PARTITION BY channel, address, reason
        ORDER BY effective_at DESC, is_listed DESC, cause_event_id DESC
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
LEFT JOIN messages ON messages.message_id = decided.message_id
WHERE NOT decided.is_listed
  -- an entry that is not listed counts as removed: removing it again changes nothing
  AND decided.action <> coalesce(listed.action, 'remove')
ORDER BY decided.effective_at, decided.channel, decided.address, decided.reason;
