-- The one classifier of failed and delayed deliveries (DESIGN §4). Every parser, the bounce-mail
-- reader and dispatch's own SMTP refusals hand it the evidence and take from it the event type,
-- the bounce kind and the reason (warehouse.vocabulary.BounceReason):
--   verdict  what the reporter says of the attempt: 'failed' (permanent), 'gave_up' (it stopped
--            retrying temporary failures: a final soft bounce), 'delayed' (still trying),
--            'delivered', or NULL (judged from the codes);
--   code     the enhanced status code (RFC 3463), e.g. '5.1.1';
--   reply    the SMTP reply code, e.g. '550';
--   text     the diagnostic text;
--   hint     the provider's own classification as '<provider>:<classification>'.
-- A good address wrongly called bad is the worst error this can make, so `bad_email` needs
-- proof: a status code that says so, a provider's classification that says so, or a reply that
-- says the mailbox does not exist and nothing about policy.

-- The SMTP reply code a diagnostic text starts with ('550 5.1.1 ...', 'smtp; 550 ...', '...
-- said: 550 ...'): a number elsewhere in the text ("quota of 250 MB") is no reply.
CREATE OR REPLACE TEMP MACRO smtp_reply_code(value) AS (
    nullif(regexp_extract(value, '(^|said:|;)\s*([245][0-5][0-9])([\s-]|$)', 2), '')
);

-- What an enhanced status code says precisely (its subject and detail); NULL when it is
-- generic (x.0.0, x.1.0, ...) or only says the network failed (then the text says more).
CREATE OR REPLACE TEMP MACRO reason_of_code(code) AS (
    CASE
        WHEN code IS NULL THEN NULL
        WHEN regexp_full_match(code, '.\.1\.(1|3|6)') THEN 'user_unknown'
        WHEN regexp_full_match(code, '.\.1\.(2|10)') THEN 'domain_unknown'
        WHEN regexp_full_match(code, '.\.1\.[78]') THEN 'policy'  -- our sender address refused
        WHEN regexp_full_match(code, '.\.2\.1') THEN 'mailbox_disabled'
        WHEN regexp_full_match(code, '.\.2\.2') THEN 'mailbox_full'
        WHEN regexp_full_match(code, '.\.(2\.3|3\.4)') THEN 'too_big'
        WHEN regexp_full_match(code, '.\.4\.7') THEN 'expired'
        WHEN regexp_full_match(code, '.\.7\.13') THEN 'mailbox_disabled'
        WHEN regexp_full_match(code, '.\.7\.(2[0-7]|8|9|14)') THEN 'authentication'
        WHEN regexp_full_match(code, '.\.7\.[0-9]+') THEN 'policy'
    END
);

-- What a code says when nothing more precise is known.
CREATE OR REPLACE TEMP MACRO weak_reason_of_code(code) AS (
    CASE
        WHEN code IS NULL THEN NULL
        WHEN regexp_full_match(code, '.\.4\.4') THEN 'domain_unknown'
        -- x.5.0 is "other protocol status": Outlook.com's "550 5.5.0 Requested action not
        -- taken: mailbox unavailable" for an address it does not know is no network problem
        WHEN regexp_full_match(code, '.\.5\.0') THEN NULL
        WHEN regexp_full_match(code, '.\.[45]\.[0-9]+') THEN 'network'
        WHEN regexp_full_match(code, '.\.3\.[0-9]+') THEN 'network'
    END
);

-- Words that say the mailbox does not exist, clearly enough to prove the address wrong.
CREATE OR REPLACE TEMP MACRO says_no_such_mailbox(t) AS (
    regexp_matches(t, 'user unknown|unknown user|no such (user|mailbox|recipient|address|account|person)'
        || '|(mailbox|user|recipient|address|account|email account)( that you tried to reach)? (does not|doesn''t|did not) exist'
        || '|(mailbox|user|recipient|address) (not found|unknown|not known|is unknown)'
        || '|unknown (recipient|mailbox|local.?part|address|account)|recipient not found'
        || '|invalid (recipient|mailbox)|not a valid (mailbox|recipient|user)|no mailbox (here )?by that name'
        || '|(user|recipient) (is )?not listed|doesn''t have an? [a-z0-9.-]+ account'
        || '|bad destination mailbox|not listed in (the )?(domino|public|name)'
        || '|(recipient|user)( name)? (is )?not recogni[sz]ed|mailbox (is )?(not )?(unavailable|not available) \(user unknown\)'
        || '|resolver\.adr\.recipientnotfound|addressee unknown|unrouteable address')
);

-- Words that say the message, not the address, was refused.
CREATE OR REPLACE TEMP MACRO says_policy(t) AS (
    regexp_matches(t, 'spam|black.?list|block.?list|deny.?list|blocked|reputation|\brbl\b|spamhaus|'
        || 'barracuda|junk|virus|malware|phish|content|policy|abuse|prohibited|banned|'
        || 'listed (on|at|by)|rate limit|too many|unsolicited|not accepting mail|relay(ing)? (access )?denied|rcpthosts|not permitted')
);

-- Words that the refusal is of our own (sender, return path) address, not the recipient's:
-- a relay verifying senders, or a bounce of the bounce address itself.
CREATE OR REPLACE TEMP MACRO says_about_sender(t) AS (
    coalesce(regexp_matches(t, 'sender address|sender verif|verification failed for|callout|'
        || 'mail from:|envelope from|return.?path|bounces\+msg_|sender (domain|rejected|denied)'), false)
);

-- Words that the failure is passing: never proof of anything.
CREATE OR REPLACE TEMP MACRO says_temporary(t) AS (
    -- whole words: a domain or an address (slater.com, contemporary-art.example) says nothing
    coalesce(regexp_matches(t, '\bgreylist|\btry again\b|\btemporar(y|ily)\b|\blater\b'), false)
);

-- Words that the mailbox is full: it exists, whatever a code says (Orange answers a full
-- mailbox "552 5.1.1 Boite du destinataire pleine. Recipient overquota").
CREATE OR REPLACE TEMP MACRO says_mailbox_full(t) AS (
    coalesce(regexp_matches(t, 'quota|mailbox (is )?full|box full|full mailbox|'
        || 'insufficient (system )?storage|exceeded storage|storage (limit|allocation)|'
        || 'over ?quota|out of (disk|storage) space|boite (du destinataire )?pleine|postfach voll'),
        false)
);

CREATE OR REPLACE TEMP MACRO says_authentication(t) AS (
    regexp_matches(t, 'dmarc|dkim|\bspf\b|sender policy framework|authenticat|reverse dns|ptr record')
);

-- What the diagnostic text says, when the code did not say it precisely.
CREATE OR REPLACE TEMP MACRO reason_of_text(t) AS (
    CASE
        WHEN t IS NULL OR t = '' THEN NULL
        WHEN says_authentication(t) THEN 'authentication'
        WHEN says_mailbox_full(t) THEN 'mailbox_full'
        WHEN regexp_matches(t, 'too (large|big)|size limit|exceed(s|ed)? (the )?(maximum|message|size)|'
            || 'message size|message length') THEN 'too_big'
        WHEN regexp_matches(t, 'too many hops|mail loop|loop(s)? detected|routing loop|greylist')
            THEN 'network'
        WHEN says_no_such_mailbox(t) AND NOT says_policy(t) THEN 'user_unknown'
        WHEN says_policy(t) THEN 'policy'
        WHEN regexp_matches(t, 'disabled|inactive|suspended|deactivated|no longer (active|in use|available)'
            || '|account (has been )?(closed|locked|expired)|mailbox (is )?(locked|closed)')
            THEN 'mailbox_disabled'
        WHEN regexp_matches(t, 'host or domain name not found|domain (name )?(not found|does not exist|'
            || 'doesn''t exist|unknown)|no mx|nxdomain|name service error|no such domain|'
            || 'unroutable|host (name )?not found|unknown (host|domain)|null mx|lookup fail')
            -- "Host not found, try again", "temporary DNS lookup failure": the name server
            -- did not answer, which says nothing of the domain
            AND NOT says_temporary(t)
            THEN 'domain_unknown'
        WHEN regexp_matches(t, 'expired|too long|retry time|gave up|giving up|[0-9]+ attempts|could not be delivered '
            || 'within|delivery time|delay(ed)? for|time limit') THEN 'expired'
        WHEN regexp_matches(t, 'time[d ]?out|connection|network|unreachable|refused|loop|lost|'
            || 'temporar|try again|dns|resolve|greylist|gateway|no route|routing|syntax error|'
            || 'command (not |un)recogni[sz]ed') THEN 'network'
        WHEN regexp_matches(t, 'does not exist|doesn''t exist|not exist|invalid address|'
            || 'recipient address rejected|rejected recipient|no longer exists')
            THEN 'user_unknown'
    END
);

-- A provider's own classification, where it is precise; `proof` when it says the address is
-- wrong (SES NoEmail, SendGrid's and Postmark's invalid address).
CREATE OR REPLACE TEMP MACRO reason_of_hint(hint) AS (
    CASE hint
        WHEN 'ses:NoEmail' THEN 'user_unknown'
        WHEN 'ses:MailboxFull' THEN 'mailbox_full'
        WHEN 'ses:MessageTooLarge' THEN 'too_big'
        WHEN 'ses:ContentRejected' THEN 'policy'
        WHEN 'ses:AttachmentRejected' THEN 'policy'
        WHEN 'ses:SpamDetected' THEN 'policy'
        WHEN 'ses:IPFailure' THEN 'policy'
        WHEN 'sendgrid:Invalid Address' THEN 'user_unknown'
        WHEN 'sendgrid:Mailbox Unavailable' THEN 'mailbox_disabled'
        WHEN 'sendgrid:Content' THEN 'policy'
        WHEN 'sendgrid:Reputation' THEN 'policy'
        WHEN 'sendgrid:Frequency or Volume Too High' THEN 'policy'
        WHEN 'postmark:BadEmailAddress' THEN 'user_unknown'
        WHEN 'postmark:DMARCPolicy' THEN 'authentication'
        WHEN 'postmark:Blocked' THEN 'policy'
        WHEN 'postmark:SpamNotification' THEN 'policy'
        WHEN 'postmark:VirusNotification' THEN 'policy'
        WHEN 'mailgun:old' THEN 'expired'
        WHEN 'mailgun:espblock' THEN 'policy'
    END
);

CREATE OR REPLACE TEMP MACRO hint_proves_bad_address(hint) AS (
    coalesce(hint IN ('ses:NoEmail', 'sendgrid:Invalid Address', 'postmark:BadEmailAddress'), false)
);

-- Vague classifications, used only when neither code nor text says anything.
CREATE OR REPLACE TEMP MACRO weak_reason_of_hint(hint) AS (
    CASE hint
        WHEN 'ses:TransientCommunicationFailure' THEN 'network'
        WHEN 'ses:RecipientServerError' THEN 'network'
        WHEN 'ses:BYOIPHostNameLookupUnavailable' THEN 'network'
        WHEN 'sendgrid:Technical' THEN 'network'
        WHEN 'postmark:DnsError' THEN 'network'
    END
);

CREATE OR REPLACE TEMP MACRO failure_reason(code, text, hint) AS (
    coalesce(
        CASE WHEN says_about_sender(lower(text)) THEN 'policy' END,
        CASE WHEN reason_of_code(code) = 'user_unknown' AND says_mailbox_full(lower(text))
            THEN 'mailbox_full' END,
        reason_of_code(code),
        reason_of_hint(hint),
        reason_of_text(lower(text)),
        weak_reason_of_hint(hint),
        weak_reason_of_code(code),
        'other'
    )
);

-- The verdict, judged from the codes where the reporter gave none; a permanent verdict on a
-- temporary code (DSN "Action: failed" with 4.4.7) means it gave up retrying.
CREATE OR REPLACE TEMP MACRO failure_verdict(verdict, code, reply) AS (
    CASE
        WHEN verdict IN ('delivered', 'delayed', 'gave_up') THEN verdict
        WHEN coalesce(left(code, 1), left(reply, 1)) = '4' THEN
            CASE WHEN verdict = 'failed' THEN 'gave_up' ELSE 'delayed' END
        WHEN verdict IS NULL AND coalesce(left(code, 1), left(reply, 1)) = '2' THEN 'delivered'
        ELSE 'failed'
    END
);

-- Proof that the address is wrong, for a permanent failure with the given reason: the code says
-- so; or the provider says so and no precise code says otherwise; or the code says nothing
-- (none, or 5.0.0 or 5.3.0, which relays put in when the remote server gave none) and the
-- remote server's words say the mailbox does not exist, and nothing of policy or of a passing
-- failure. A 5.0.0 alone proves nothing (DESIGN §3). Words about our own sender address
-- (a relay verifying senders) never prove anything about the recipient, whatever the code,
-- and words that the mailbox is full say it exists.
CREATE OR REPLACE TEMP MACRO proves_bad_address(code, reason, text, hint) AS (
    NOT says_about_sender(lower(text)) AND NOT says_mailbox_full(lower(text)) AND (
        coalesce(code IN ('5.1.1', '5.1.2', '5.1.3', '5.1.6', '5.1.10'), false)
        OR (reason_of_code(code) IS NULL AND reason = 'user_unknown' AND (
            hint_proves_bad_address(hint)
            OR ((code IS NULL OR regexp_full_match(code, '.\.[03]\.0'))
                AND coalesce(says_no_such_mailbox(lower(text)), false)
                AND NOT coalesce(says_policy(lower(text)), false)
                AND NOT says_temporary(lower(text))))))
);

-- The canonical event, bounce kind and reason of a failed, delayed or delivered attempt. (The
-- verdict and reason are worked out once and handed to a lambda: a macro's argument would be
-- copied wherever it is used, and planning the copies cost milliseconds a query.)
CREATE OR REPLACE TEMP MACRO classify_failure(verdict, code, reply, text, hint) AS (
    list_transform(
        [struct_pack(v := failure_verdict(verdict, code, reply),
                     r := failure_reason(code, text, hint))],
        lambda x: struct_pack(
            event_type := CASE x.v
                WHEN 'delivered' THEN 'delivered'
                WHEN 'delayed' THEN 'deferred'
                WHEN 'gave_up' THEN 'bounced'
                ELSE CASE WHEN proves_bad_address(code, x.r, text, hint) THEN 'bad_email'
                          ELSE 'bounced' END
            END,
            -- hard: about the recipient; `other` only where a code or the provider says
            -- permanent (a failure nobody explains lists nobody)
            bounce_kind := CASE x.v
                WHEN 'gave_up' THEN 'soft'
                WHEN 'failed' THEN
                    CASE
                        WHEN x.r IN ('user_unknown', 'domain_unknown', 'mailbox_disabled')
                            THEN 'hard'
                        WHEN x.r = 'other' AND (regexp_full_match(coalesce(code, ''), '5\.[12]\.[0-9]+')
                                                OR (code IS NULL AND left(reply, 1) = '5')
                                                OR hint IS NOT NULL)
                            THEN 'hard'
                        ELSE 'soft'
                    END
            END,
            bounce_reason := CASE WHEN x.v <> 'delivered' THEN x.r END
        )
    )[1]
);

-- Stands for classify_failure in a parser's query tried first (parsers/__init__.py,
-- Parser.queries): planning the classifier costs more than parsing a micro-batch, and most
-- batches hold no failure. The first record that needs the classifier stops that query, with
-- this message, and the parser's whole query runs instead.
CREATE OR REPLACE TEMP MACRO classify_failure_later(verdict, code, reply, text, hint) AS (
    struct_pack(
        event_type := error('a failure to classify')::VARCHAR,
        bounce_kind := error('a failure to classify')::VARCHAR,
        bounce_reason := error('a failure to classify')::VARCHAR
    )
);

-- An SMS failure by Twilio's error code: the event it means and why.
CREATE OR REPLACE TEMP MACRO classify_sms_failure(error_code) AS (
    struct_pack(
        event_type := CASE
            WHEN error_code = '30003' THEN 'deferred'
            WHEN error_code IN ('21211', '21614', '21635', '30005', '30006') THEN 'bad_number'
            WHEN error_code = '21610' THEN 'skipped'
            ELSE 'failed'
        END,
        bounce_reason := CASE
            WHEN error_code IN ('21211', '21614', '21635', '30005', '30006') THEN 'user_unknown'
            WHEN error_code IN ('30003', '30001', '30009', '30010') THEN 'network'
            WHEN error_code IN ('30004', '30007', '30034', '21610') THEN 'policy'
            WHEN error_code IS NOT NULL THEN 'other'
        END
    )
);
