"""The parsers speak only the vocabulary module's words, and between them cover all of it."""

import re
from importlib import resources

from warehouse.vocabulary import INGESTIBLE_PROVIDERS, BounceKind, BounceReason, EventType, Verdict

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
