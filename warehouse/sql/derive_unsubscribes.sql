-- Bring the Unsubscribes list in line with what happened (DESIGN §6), appending changes only.
-- Every event, inbound keyword and manual change is a vote on an entry (channel, address,
-- reason); the latest vote decides whether the entry should be on the list. Where the list
-- says otherwise, one change is appended, citing the deciding vote. Deriving twice therefore
-- adds nothing, and a manual removal stands until something newer happens.

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
    FROM events
    WHERE recipient IS NOT NULL
      AND ((event_type = 'bounced' AND bounce_kind = 'hard')
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
    WHERE keyword IN ('stop', 'start')
),

-- soft bounces of distinct messages to one address, counted since its last delivery
soft_candidates AS (
    SELECT channel, recipient
    FROM events
    WHERE event_type = 'bounced' AND bounce_kind = 'soft'
    GROUP BY channel, recipient
    HAVING count(*) >= $streak
),

outcomes AS (
    SELECT
        events.channel, events.recipient, events.event_type, events.event_id,
        events.message_id, events.occurred_at,
        coalesce(events.message_id, events.sendout_message_id, events.provider_message_id,
                 events.event_id) AS message_key,
        sum(CASE WHEN events.event_type = 'bounced' THEN 0 ELSE 1 END) OVER (
            PARTITION BY events.channel, events.recipient
            ORDER BY events.occurred_at, events.event_id
            ROWS UNBOUNDED PRECEDING
        ) AS since_delivery
    FROM events
    SEMI JOIN soft_candidates USING (channel, recipient)
    WHERE (events.event_type = 'bounced' AND events.bounce_kind = 'soft')
       OR events.event_type IN ('delivered', 'opened', 'clicked')
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
