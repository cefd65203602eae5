"""Bounces in no standard (Exim, qmail, Sendmail, old Exchange, Yahoo, Domino, ...): each failed
address in the bounce's own words with the reply next to it, given up or still trying from the
words; GNU Mailman's detectors (flufl.bounce) as the last resort for finding the addresses.
A bounce's text is read to TEXT_KEPT, LINE_KEPT characters a line, with patterns that stay
linear, so hostile input costs no time.
"""

import re
from email.message import Message
from email.utils import getaddresses

from warehouse.mime import decoded_text, header_text

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
    r"not accepting|not (been )?collected|no longer|aborted|not recogni[sz]ed|postponed|"
    r"exceeded|timed? ?out|no mailbox",
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
VERP = re.compile(r"\+(msg_[0-9a-f]{32})@", re.IGNORECASE)


def looks_like_bounce(message: Message) -> bool:
    return says_bounce(message) or header_text(message, "Return-Path").strip() == "<>"


def says_bounce(message: Message) -> bool:
    """A bounce by its sender or its subject (an auto-reply has a null return path too)."""
    return bool(
        BOUNCE_SENDER.search(header_text(message, "From"))
        or BOUNCE_SUBJECT.search(header_text(message, "Subject"))
    )


def body_text(message: Message) -> str:
    """The bounce's own words: its text parts, not the copy of the original it returns."""
    texts = []
    for part in _own_parts(message):
        if part.get_content_type() in ("text/plain", "text/html"):
            text = decoded_text(part)
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


def non_standard(message: Message, is_report: bool = False) -> dict:
    if not is_report and not looks_like_bounce(message):
        return {"mail": "not_a_bounce"}
    text = ADDRESS_PREFIX.sub("", body_text(message))
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


def add_words(recipients: list[dict], message: Message) -> None:
    """Give a report's recipients that came without a diagnostic the words its text part says
    of them (or of the failure, when it names none)."""
    wordless = [r for r in recipients if not r.get("diagnostic")]
    if not wordless:
        return
    text = body_text(message)
    lines = text.split("\n")
    for recipient in wordless:
        address = recipient["address"].lower()
        numbers = [i for i, line in enumerate(lines) if address in line.lower()]
        near = [_reply_near(lines, number, address) for number in numbers]
        recipient["diagnostic"] = next((n for n in near if n), None) or _gist(text)


def _own_addresses(message: Message) -> set[str]:
    """Addresses of the bounce itself (its sender, where it went): never the failed ones."""
    values = [header_text(message, n) for n in ("From", "To", "Cc", "Reply-To", "Delivered-To")]
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
    window[0] = _after(window[0], address)  # the address itself says nothing
    joined = " ".join(w for w in window if w)
    reply = SMTP_REPLY.search(joined)
    if reply and joined[max(0, reply.start() - 2) : reply.start()] != "(#":
        # from the reply on: what the classifier reads a reply code at the start of (qmail's
        # "(#5.1.1)" sums up the words before it: those are kept)
        return joined[reply.start() :][:500].strip()
    words = FAILURE_WORDS.search(joined)
    return joined[:500] if words else None


def _after(line: str, address: str) -> str:
    """A line from just after its mention of `address` (and the colon or bracket closing it)."""
    at = line.lower().find(address)
    return line[at + len(address) :].lstrip(">:;,. \t") if at >= 0 else line


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
