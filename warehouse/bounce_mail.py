"""Read bounce mail: what one raw email says happened to each recipient (DESIGN §7).

RFC 3464 delivery status notifications are read field by field; RFC 5965 feedback reports
are complaints; RFC 3834 auto-replies are never bounces; the bounces in no standard that real
mail servers send are read by warehouse.bounce_text. What a message says becomes one JSON
record of evidence; warehouse/parsers/mail.sql turns it into events with the one classifier.

Our message id (`msg_` and 32 hex digits) joins a bounce back: in the VERP address it was sent
back to (`bounces+<id>@...`), the DSN's envelope id, or the returned message's headers.
"""

import hashlib
import re
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

import orjson

from warehouse.bounce_text import (
    ADDRESS,
    ADDRESS_PREFIX,
    VERP,
    add_words,
    looks_like_bounce,
    non_standard,
    says_bounce,
)
from warehouse.mime import decoded_text, header_text, part_of

MESSAGE_ID = re.compile(r"msg_[0-9a-f]{32}")
RETURNED_ID = re.compile(
    r"^(?:x-sendout-message-id:\s*(msg_[0-9a-f]{32})|message-id:\s*<(msg_[0-9a-f]{32})@)",
    re.IGNORECASE | re.MULTILINE,
)
AUTO_REPLY_SUBJECT = re.compile(
    r"^(auto(matic)?[ -]?(reply|response|antwort|réponse)|out of (the )?office|vacation|"
    r"abwesenheit|absence|away from)",
    re.IGNORECASE,
)
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
    feedback = part_of(message, "message/feedback-report")
    status = part_of(message, "message/delivery-status")
    if feedback is not None or report_type == "feedback-report":
        evidence.update(_feedback(message, feedback))
    elif status is not None:
        evidence.update(_dsn(status))
        if not evidence["recipients"]:  # a report that names its recipients only in words
            evidence.update(non_standard(message, is_report=True))
        else:
            add_words(evidence["recipients"], message)
    elif _is_auto_reply(message):
        return _record(raw, {**evidence, "mail": "auto_reply"}), (
            "an auto-reply (RFC 3834), not a bounce"
        )
    else:
        evidence.update(non_standard(message))
    if not evidence.get("recipients"):
        return _record(raw, evidence), "no failed recipient found in the message"
    return _record(None, evidence), None


def _record(raw: bytes | None, evidence: dict) -> str:
    if raw is not None:
        evidence["raw"] = raw[:RAW_KEPT].decode("utf-8", "replace")
    return orjson.dumps({"sendout_mail": evidence}).decode()


# --- what every kind of message carries -----------------------------------------------------


def _common(raw: bytes, message: Message) -> dict:
    message_id = header_text(message, "Message-ID").strip()
    return {
        "mail": "unknown",
        "id": message_id or hashlib.sha256(raw).hexdigest(),
        "date": _date(header_text(message, "Date")),
        "subject": header_text(message, "Subject")[:300],
        "sendout_message_id": _our_id(raw, message),
    }


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
    return _field_blocks(decoded_text(status))


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
    blocks = _field_blocks(decoded_text(report)) if report is not None else []
    fields = blocks[0] if blocks else {}
    address = fields.get("original-rcpt-to")
    if not address:
        returned = part_of(message, "message/rfc822") or part_of(message, "text/rfc822-headers")
        if returned is not None:
            headers = message_from_bytes(decoded_text(returned).encode(), policy=compat32)
            address = header_text(headers, "To")
    addresses = [a for _, a in getaddresses([address]) if "@" in a]
    return {
        "mail": "feedback",
        "feedback_type": (fields.get("feedback-type") or "abuse").lower(),
        "recipients": [{"address": a} for a in addresses[:1]],
    }


# --- auto-replies -----------------------------------------------------------------------------


def _is_auto_reply(message: Message) -> bool:
    auto = header_text(message, "Auto-Submitted").lower()
    flagged = message.get("X-Autoreply") or message.get("X-Autorespond")
    if auto.startswith("auto-replied") or flagged:
        return not looks_like_bounce(message)
    precedence = header_text(message, "Precedence").lower()
    subject = header_text(message, "Subject")
    # an auto-reply comes with a null return path as a bounce does (RFC 3834; Exchange's
    # "Automatic reply:" carries no other mark): only its sender and subject tell them apart
    return (precedence == "auto_reply" or bool(AUTO_REPLY_SUBJECT.match(subject))) and (
        not says_bounce(message)
    )
