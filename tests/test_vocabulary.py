"""The parsers speak only the vocabulary module's words, and between them cover all of it; the
Python code types none of them by hand."""

import ast
import re
from importlib import resources
from pathlib import Path

from warehouse.vocabulary import (
    INGESTIBLE_PROVIDERS,
    BounceKind,
    BounceReason,
    Channel,
    CommunicationType,
    DisplayStatus,
    EventType,
    InboundStatus,
    SendoutStatus,
    UnsubscribeReason,
    UnsubscribeScope,
    Verdict,
)

PRODUCED_BY_OUR_OWN_SERVICES = {EventType.FORWARDED, EventType.REPLIED}


def parser_sql() -> dict[str, str]:
    """Each provider's parser, and the classifier they share."""
    folder = resources.files("warehouse.parsers")
    names = [*INGESTIBLE_PROVIDERS, "classify"]
    return {p: (folder / f"{p}.sql").read_text() for p in names}


def test_every_word_a_parser_produces_is_in_the_vocabulary() -> None:
    words = {w for sql in parser_sql().values() for w in re.findall(r"THEN '([a-z_]+)'", sql)}

    assert words <= {str(w) for w in (*EventType, *BounceKind, *BounceReason, *Verdict)}


def test_the_parsers_together_produce_every_provider_event_type() -> None:
    words = {w for sql in parser_sql().values() for w in re.findall(r"THEN '([a-z_]+)'", sql)}

    assert {str(e) for e in EventType} - PRODUCED_BY_OUR_OWN_SERVICES <= words


def test_the_classifier_gives_every_bounce_reason() -> None:
    words = set(re.findall(r"THEN '([a-z_]+)'", parser_sql()["classify"]))
    words |= set(re.findall(r"coalesce\([^;]*'([a-z_]+)'\s*\)", parser_sql()["classify"]))

    assert {str(r) for r in BounceReason} <= words


# --- Sendout's words are typed once, in warehouse/vocabulary.py --------------------------------

MACHINE_WORDS = {
    str(word): enum.__name__
    for enum in (
        EventType,
        Channel,
        CommunicationType,
        UnsubscribeReason,
        UnsubscribeScope,
    )
    for word in enum
}
SHOWN_WORDS = {str(w): e.__name__ for e in (DisplayStatus, SendoutStatus, InboundStatus) for w in e}
# the same letters meaning something else: names of columns and placeholders, provider payloads
OTHER_MEANINGS = {
    "warehouse/contact_rows.py": {"email"},  # the CSV's column names
    "warehouse/contacts.py": {"email"},  # the contacts table's columns
    "warehouse/templates.py": {"email"},  # the placeholder {email}
    "warehouse/parsers/__init__.py": {"email"},  # a key of SendGrid's payload
    "warehouse/bounce_mail.py": {"failed", "delivered"},  # RFC 3464's Action values
    "warehouse/bounce_text.py": {"failed"},
    "flows/senders/sandbox.py": {"sent", "failed", "delivered", "received", "complaint"},
    "dashboards/views/new_sendout.py": {"sms"},  # the SMS text's widget, in the kept fields
}


def _names_not_words(tree: ast.AST) -> set[int]:
    """Strings that name something rather than say a word: dict keys, subscripts, column and
    widget names, docstrings."""
    names: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            names.update(id(key) for key in node.keys if key is not None)
        elif isinstance(node, ast.Subscript):
            names.add(id(node.slice))
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("col", "get", "pop"):
                names.update(id(arg) for arg in node.args[:1])
            names.update(id(k.value) for k in node.keywords if k.arg == "key")
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(
            node, clean=False
        ):
            names.add(id(node.body[0].value))
    return names


def _compared(tree: ast.AST) -> set[int]:
    return {
        id(operand)
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        for operand in (node.left, *node.comparators)
    }


def hand_typed_words(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    names, compared = _names_not_words(tree), _compared(tree)
    allowed = OTHER_MEANINGS.get(path.as_posix(), set())
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in names
        and node.value not in allowed
        and (node.value in MACHINE_WORDS or (node.value in SHOWN_WORDS and id(node) in compared))
    ]


def test_no_status_reason_scope_channel_or_type_word_is_typed_outside_the_vocabulary() -> None:
    found = {
        path.as_posix(): words
        for folder in ("warehouse", "flows", "dashboards", "notebooks")
        for path in sorted(Path(folder).rglob("*.py"))
        if path.name != "vocabulary.py" and (words := hand_typed_words(path))
    }

    assert found == {}, "use warehouse.vocabulary's enums for these words"
