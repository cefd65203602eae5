"""What the bounce reader needs of a parsed email (Python's `email` package, compat32): a
header's text, a part by content type, a part's text whatever charset it claims."""

from email.header import decode_header, make_header
from email.message import Message


def header_text(message: Message, name: str) -> str:
    """A header's text, its encoded words (RFC 2047) decoded."""
    value = message.get(name)
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except Exception:  # an unknown charset, a broken encoded word: the header as it came
        return str(value)


def part_of(message: Message, content_type: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def decoded_text(part: Message) -> str:
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
