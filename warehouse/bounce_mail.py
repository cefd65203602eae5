"""Read bounce mail: what one raw email says happened to each recipient (DESIGN §7).

RFC 3464 delivery status notifications are read field by field; RFC 5965 feedback reports
are complaints; the non-standard bounces that real mail servers send (Exim, qmail, Sendmail,
Exchange, Gmail, Yahoo, Domino, ...) are read by finding each failed address and the reply
next to it, with GNU Mailman's detectors (flufl.bounce) as the last resort for finding the
addresses. RFC 3834 auto-replies are never bounces. What a message says becomes one JSON
record of evidence; warehouse/parsers/mail.sql turns it into events with the one classifier.

Our message id (`msg_` and 32 hex digits) joins a bounce back: in the VERP address it was sent
back to (`bounces+<id>@...`), the DSN's envelope id, or the returned message's headers.
"""

import hashlib
import re
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

import orjson

MESSAGE_ID = re.compile(r"msg_[0-9a-f]{32}")
VERP = re.compile(r"\+(msg_[0-9a-f]{32})@", re.IGNORECASE)
RETURNED_ID = re.compile(
    r"^(?:x-sendout-message-id:\s*(msg_[0-9a-f]{32})|message-id:\s*<(msg_[0-9a-f]{32})@)",
    re.IGNORECASE | re.MULTILINE,
)
ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}"
)
# an X.400 gateway's way of writing an address: "dda:SMTP=user@example.com", "smtp=..."
ADDRESS_PREFIX = re.compile(r"(?:dda:)?(?:smtp|rfc-?822)=", re.IGNORECASE)
# a failure reply: 4xx or 5xx, or an enhanced code of class 4 or 5
SMTP_REPLY = re.compile(
    r"(?<![0-9.])[45][0-5][0-9](?:[ -]|$)|(?<![0-9.])[45]\.[0-9]{1,3}\.[0-9]{1,3}"
)
SENDER_BEFORE = re.compile(r"(mail from|from|sender)\s*:?\s*<?$", re.IGNORECASE)
FAILURE_WORDS = re.compile(
    r"unknown|no such|does ?n[o']t (exist|have)|not found|invalid|rejected|refused|denied|full|"
    r"quota|disabled|discontinued|unrouteable|unroutable|not listed|fail|error|blocked|"
    r"too (large|big)|expired|could ?n[o']t|cannot|can't|unable|undeliver|not (be )?delivered|"
    r"not accepting|not (been )?collected|no longer|aborted|not recogni[sz]ed|postponed",
    re.IGNORECASE,
)
BOUNCE_SENDER = re.compile(
    r"mailer-daemon|postmaster|mail delivery|mailer|mail administrator", re.IGNORECASE
)
BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|delivery (status|failure|failed|notification|report|problem)|"
    r"non.?delivery|not (be )?delivered|failure notice|mail delivery failed|bounce|"
    r"could not send|delivery has failed|delayed mail|warning: could not|nondeliverable",
    re.IGNORECASE,
)
AUTO_REPLY_SUBJECT = re.compile(
    r"^(auto(matic)?[ -]?(reply|response|antwort|réponse)|out of (the )?office|vacation|"
    r"abwesenheit|absence|away from)",
    re.IGNORECASE,
)
DELAY_WORDS = re.compile(
    r"delayed|will (continue to )?(retry|try)|still (be )?trying|not yet been delivered|"
    r"warning: message|has not been delivered yet|postponed|attempts will continue|"
    r"will be retried|continue to try",
    re.IGNORECASE,
)
GIVE_UP_WORDS = re.compile(
    r"after \d+ attempt|not going to try again|gave up|giving up|too long|will not be retried|"
    r"no further attempts|aborted after|permanent(ly)?|delivery failed \d+ attempts|"
    r"could not be delivered within|not been collected",
    re.IGNORECASE,
)
# where the copy of the original message starts in a bounce's text
# (no two quantifiers that can take the same characters: a long line of dashes stays linear)
RETURNED_COPY = re.compile(
    r"^[ \t>]*(?:-+ ?(?:original message|this is a copy|below this line|the original message|"
    r"returned message)|original message follows|received: from )",
    re.IGNORECASE | re.MULTILINE,
)
ROLE_LOCAL_PARTS = ("mailer-daemon", "postmaster", "double-bounce", "noreply", "no-reply")
LOOK_AHEAD_LINES = 10
TEXT_KEPT = 256 * 1024  # of a bounce's own words, what is read for addresses and replies
LINE_KEPT = 2000  # of each of its lines (hostile lines of megabytes cost no time)
RAW_KEPT = 64 * 1024  # what a record keeps of a message that yields nothing, for quarantine


def read_message(raw: bytes) -> tuple[str, str | None]:
    """One email as a JSON record of evidence, and why it yields no event (or None). Never
    raises: a message that trips the reader is kept for quarantine with what went wrong."""
    try:
        return _read(raw)
    except Exception as error:  # hostile input must not stop the messages around it
        problem = f"the message could not be read ({type(error).__name__}: {error})"
        return _record(raw, {"mail": "unreadable"}), problem[:500]


def _read(raw: bytes) -> tuple[str, str | None]:
    message = message_from_bytes(raw, policy=compat32)
    if not message.keys():
        return _record(raw, {"mail": "none"}), "not an email message: no header fields"
    evidence = _common(raw, message)
    report_type = (message.get_param("report-type") or "").lower()
    feedback = _part(message, "message/feedback-report")
    status = _part(message, "message/delivery-status")
    if feedback is not None or report_type == "feedback-report":
        evidence.update(_feedback(message, feedback))
    elif status is not None:
        evidence.update(_dsn(status))
        if not evidence["recipients"]:  # a report that names its recipients only in words
            evidence.update(_non_standard(message, is_report=True))
        else:
            _add_words(evidence["recipients"], message)
    elif _is_auto_reply(message):
        return _record(raw, {**evidence, "mail": "auto_reply"}), (
            "an auto-reply (RFC 3834), not a bounce"
        )
    else:
        evidence.update(_non_standard(message))
    if not evidence.get("recipients"):
        return _record(raw, evidence), "no failed recipient found in the message"
    return _record(None, evidence), None


def _record(raw: bytes | None, evidence: dict) -> str:
    if raw is not None:
        evidence["raw"] = raw[:RAW_KEPT].decode("utf-8", "replace")
    return orjson.dumps({"sendout_mail": evidence}).decode()


# --- what every kind of message carries -----------------------------------------------------


def _common(raw: bytes, message: Message) -> dict:
    message_id = _header(message, "Message-ID").strip()
    return {
        "mail": "unknown",
        "id": message_id or hashlib.sha256(raw).hexdigest(),
        "date": _date(_header(message, "Date")),
        "subject": _header(message, "Subject")[:300],
        "sendout_message_id": _our_id(raw, message),
    }


def _header(message: Message, name: str) -> str:
    """A header's text, its encoded words (RFC 2047) decoded."""
    value = message.get(name)
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except Exception:  # an unknown charset, a broken encoded word: the header as it came
        return str(value)


def _date(text: str) -> str | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when.isoformat() if when.tzinfo else when.isoformat() + "Z"


def _our_id(raw: bytes, message: Message) -> str | None:
    """Our message id: the VERP address the bounce came back to, else the returned headers."""
    for name in ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To"):
        for value in message.get_all(name) or []:
            if found := VERP.search(str(value)):
                return found.group(1).lower()
    text = raw.decode("latin-1")
    if found := RETURNED_ID.search(text):
        return found.group(1) or found.group(2)
    return None


def _part(message: Message, content_type: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def _text(part: Message) -> str:
    """A part's text, decoded, whatever charset it claims (or wrongly claims)."""
    payload = part.get_payload(decode=True)
    if payload is None:  # a message/* part holds messages, not bytes
        inner = part.get_payload()
        if isinstance(inner, list):
            return "\n\n".join(m.as_string() for m in inner if isinstance(m, Message))
        return str(inner or "")
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except (LookupError, UnicodeError):  # an unknown charset, or one that cannot replace
        return payload.decode("utf-8", "replace")


# --- RFC 3464 and RFC 5965 -------------------------------------------------------------------


def _field_blocks(text: str) -> list[dict[str, str]]:
    """Header-like field groups separated by blank lines, names lower-cased."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    name = None
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
            current, name = {}, None
        elif line[0] in " \t" and name:
            current[name] += " " + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            current[name] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def _typed(value: str | None) -> str | None:
    """A DSN value without its type ("rfc822; a@b" -> "a@b", "smtp; 550 ..." -> "550 ...")."""
    if not value:
        return None
    kind, sep, rest = value.partition(";")
    return (rest if sep and " " not in kind.strip() else value).strip() or None


def _dsn_address(block: dict[str, str]) -> str | None:
    """The address we sent to: the original recipient where the report keeps it (the final one
    may be an alias it expanded to, or an X.400 name), else the final one."""
    for name in ("original-recipient", "final-recipient"):
        value = _typed(block.get(name)) or ""
        if found := ADDRESS.search(ADDRESS_PREFIX.sub("", value)):
            return found.group(0).strip(".'\"`")
    return None


ACTIONS = {
    "fail": "failed",
    "error": "failed",
    "delay": "delayed",
    "deliver": "delivered",
    "relay": "relayed",
    "expand": "expanded",
}


def _action(value: str | None) -> str | None:
    """RFC 3464's action, from what servers write ("failed", "failure", "Error", ...)."""
    word = (value or "").strip().lower()
    return next((action for start, action in ACTIONS.items() if word.startswith(start)), None)


def _status_blocks(status: Message) -> list[dict[str, str]]:
    """The field groups of a message/delivery-status part: as the email package parsed them,
    else (a part it could not parse) read from its text. (A base64-encoded status part is not
    read: no server seen sends one.)"""
    parsed = status.get_payload()
    if isinstance(parsed, list) and parsed and not status.get("Content-Transfer-Encoding"):
        return [
            {name.lower(): " ".join(str(value).split()) for name, value in block.items()}
            for block in parsed
            if isinstance(block, Message)
        ]
    return _field_blocks(_text(status))


def _dsn(status: Message) -> dict:
    blocks = _status_blocks(status)
    per_message = blocks[0] if blocks and "final-recipient" not in blocks[0] else {}
    recipients = []
    for block in blocks:
        address = _dsn_address(block)
        if not address:
            continue
        code = _status_code(block.get("status"))
        # what else the report says: words after the status code, a gateway's own notes
        said = [
            _typed(block.get("diagnostic-code")),
            (block.get("status") or "").replace(code or "", "", 1).strip(" ()"),
            block.get("x-supplementary-info") or block.get("x400-supplementary-info"),
        ]
        recipients.append(
            {
                "address": address,
                "action": _action(block.get("action")),
                "status": code,
                "diagnostic": " ".join(s for s in said if s) or None,
                "remote_mta": _typed(block.get("remote-mta")),
            }
        )
    envelope_id = per_message.get("original-envelope-id", "")
    evidence: dict = {"mail": "dsn", "recipients": recipients}
    if reporting := _typed(per_message.get("reporting-mta")):
        evidence["reporting_mta"] = reporting
    if found := MESSAGE_ID.search(envelope_id):
        evidence["envelope_id"] = found.group(0)
    return evidence


def _status_code(value: str | None) -> str | None:
    found = re.search(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}", value or "")
    return found.group(0) if found else None


def _feedback(message: Message, report: Message | None) -> dict:
    blocks = _field_blocks(_text(report)) if report is not None else []
    fields = blocks[0] if blocks else {}
    address = fields.get("original-rcpt-to")
    if not address:
        returned = _part(message, "message/rfc822") or _part(message, "text/rfc822-headers")
        if returned is not None:
            headers = message_from_bytes(_text(returned).encode(), policy=compat32)
            address = _header(headers, "To")
    addresses = [a for _, a in getaddresses([address]) if "@" in a]
    return {
        "mail": "feedback",
        "feedback_type": (fields.get("feedback-type") or "abuse").lower(),
        "recipients": [{"address": a} for a in addresses[:1]],
    }


# --- auto-replies and the bounces that follow no standard ------------------------------------


def _is_auto_reply(message: Message) -> bool:
    auto = _header(message, "Auto-Submitted").lower()
    flagged = message.get("X-Autoreply") or message.get("X-Autorespond")
    if auto.startswith("auto-replied") or flagged:
        return not _looks_like_bounce(message)
    precedence = _header(message, "Precedence").lower()
    subject = _header(message, "Subject")
    return (precedence == "auto_reply" or bool(AUTO_REPLY_SUBJECT.match(subject))) and (
        not _looks_like_bounce(message)
    )


def _looks_like_bounce(message: Message) -> bool:
    return bool(
        BOUNCE_SENDER.search(_header(message, "From"))
        or BOUNCE_SUBJECT.search(_header(message, "Subject"))
        or _header(message, "Return-Path").strip() == "<>"
    )


def _body_text(message: Message) -> str:
    """The bounce's own words: its text parts, not the copy of the original it returns."""
    texts = []
    for part in _own_parts(message):
        if part.get_content_type() in ("text/plain", "text/html"):
            text = _text(part)
            if part.get_content_type() == "text/html":
                text = re.sub(r"<br\s*/?>|</p>|</div>|</tr>", "\n", text, flags=re.I)
                text = re.sub(r"<[^>]+>", " ", text)
            texts.append(text)
    body = "\n".join(line[:LINE_KEPT] for line in "\n".join(texts)[:TEXT_KEPT].split("\n"))
    cut = RETURNED_COPY.search(body)
    return body[: cut.start()] if cut else body


def _own_parts(message: Message):
    if message.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
        return
    if message.is_multipart():
        for part in message.get_payload():
            if isinstance(part, Message):
                yield from _own_parts(part)
    else:
        yield message


def _non_standard(message: Message, is_report: bool = False) -> dict:
    if not is_report and not _looks_like_bounce(message):
        return {"mail": "not_a_bounce"}
    text = ADDRESS_PREFIX.sub("", _body_text(message))
    ignored = _own_addresses(message)
    recipients = _addresses_with_replies(text, ignored)
    kind = "text"
    if not recipients:
        recipients = _flufl_addresses(message, text, ignored)
        kind = "detector"
    # a bounce in no standard is a failure unless it says it is still trying: never a delivery
    still_trying = DELAY_WORDS.search(text) and not GIVE_UP_WORDS.search(text)
    permanent_reply = re.search(r"(?<![0-9.])5[0-9][0-9](?![0-9.])", text)
    verdict = "delayed" if still_trying and not permanent_reply else "failed"
    for recipient in recipients:
        recipient["action"] = verdict
    return {"mail": kind, "recipients": recipients}


def _add_words(recipients: list[dict], message: Message) -> None:
    """Give a report's recipients that came without a diagnostic the words its text part says
    of them (or of the failure, when it names none)."""
    wordless = [r for r in recipients if not r.get("diagnostic")]
    if not wordless:
        return
    text = _body_text(message)
    lines = text.split("\n")
    for recipient in wordless:
        address = recipient["address"].lower()
        numbers = [i for i, line in enumerate(lines) if address in line.lower()]
        near = [_reply_near(lines, number, address) for number in numbers]
        recipient["diagnostic"] = next((n for n in near if n), None) or _gist(text)


def _own_addresses(message: Message) -> set[str]:
    """Addresses of the bounce itself (its sender, where it went): never the failed ones."""
    values = [_header(message, n) for n in ("From", "To", "Cc", "Reply-To", "Delivered-To")]
    return {a.lower() for _, a in getaddresses(values) if a}


def _is_candidate(address: str, ignored: set[str]) -> bool:
    local = address.partition("@")[0]
    return address not in ignored and local not in ROLE_LOCAL_PARTS and not VERP.search(address)


def _addresses_with_replies(text: str, ignored: set[str]) -> list[dict]:
    """Each address in the text with a failure reply near one of its mentions (the first
    mention with a reply, else the first with words of failure)."""
    lines = text.replace("\r\n", "\n").split("\n")
    mentions: dict[str, list[int]] = {}
    for number, line in enumerate(lines):
        for found in ADDRESS.finditer(line):
            address = found.group(0).strip(".'\"`").lower()
            if SENDER_BEFORE.search(line[: found.start()]) or not _is_candidate(address, ignored):
                continue  # the sender ("not accepting mail from <us>"), a role address
            mentions.setdefault(address, []).append(number)
    recipients = []
    for address, numbers in mentions.items():
        near = [_reply_near(lines, number, address) for number in numbers]
        replies = [n for n in near if n and SMTP_REPLY.search(n)]
        diagnostic = next(iter(replies), None) or next((n for n in near if n), None)
        if diagnostic:
            recipients.append({"address": address, "diagnostic": diagnostic})
    return recipients


def _reply_near(lines: list[str], number: int, address: str) -> str | None:
    """The failure reply given for `address`: on its line or in the lines after it, up to the
    next line naming another address."""
    window = []
    for offset, line in enumerate(lines[number : number + LOOK_AHEAD_LINES]):
        others = [a for a in ADDRESS.findall(line) if a.strip(".'\"`").lower() != address]
        if offset and others and not SMTP_REPLY.search(line):
            break
        window.append(line.strip())
    joined = " ".join(w for w in window if w)
    reply = SMTP_REPLY.search(joined)
    if reply:  # from the reply on: what the classifier reads a reply code at the start of
        return joined[reply.start() :][:500].strip()
    words = FAILURE_WORDS.search(joined)
    return joined[:500] if words else None


def _flufl_addresses(message: Message, text: str, ignored: set[str]) -> list[dict]:
    """GNU Mailman's detectors, for formats the text reading did not understand."""
    from flufl.bounce import all_failures  # imported here: it is needed for few messages

    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a detector that trips over a malformed message finds nothing
        return []
    lines = text.split("\n")
    recipients = []
    for raw_address, action in [(a, "delayed") for a in temporary] + [(a, None) for a in permanent]:
        if isinstance(raw_address, bytes):
            raw_address = raw_address.decode("utf-8", "replace")
        address = raw_address.strip("<> ").lower()
        if "@" not in address or not _is_candidate(address, ignored):
            continue
        number = next((i for i, line in enumerate(lines) if address in line.lower()), None)
        diagnostic = _reply_near(lines, number, address) if number is not None else None
        recipients.append(
            {"address": address, "action": action, "diagnostic": diagnostic or _gist(text)}
        )
    return recipients


def _gist(text: str) -> str | None:
    """The first words of a bounce that say what went wrong, when no line names an address."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    failing = [p for p in paragraphs if p and (SMTP_REPLY.search(p) or FAILURE_WORDS.search(p))]
    return " ".join(failing)[:500] or None
