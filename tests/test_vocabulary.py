"""The parsers speak only the vocabulary module's words, and between them cover all of it."""

import re
from importlib import resources

from warehouse.vocabulary import INGESTIBLE_PROVIDERS, BounceKind, EventType

PRODUCED_BY_OUR_OWN_SERVICES = {EventType.FORWARDED, EventType.REPLIED}


def parser_sql() -> dict[str, str]:
    folder = resources.files("warehouse.parsers")
    return {p: (folder / f"{p}.sql").read_text() for p in INGESTIBLE_PROVIDERS}


def test_every_word_a_parser_produces_is_in_the_vocabulary() -> None:
    words = {w for sql in parser_sql().values() for w in re.findall(r"THEN '([a-z_]+)'", sql)}

    assert words <= {str(e) for e in EventType} | {str(k) for k in BounceKind}


def test_the_parsers_together_produce_every_provider_event_type() -> None:
    words = {w for sql in parser_sql().values() for w in re.findall(r"THEN '([a-z_]+)'", sql)}

    assert {str(e) for e in EventType} - PRODUCED_BY_OUR_OWN_SERVICES <= words
