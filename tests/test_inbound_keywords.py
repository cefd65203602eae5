"""What an SMS reply asks (DESIGN §6): the whole body, trimmed, in any case, is the keyword."""

import polars as pl
import pytest

from warehouse.inbound import keyword


def classify(*bodies: str) -> list[str]:
    frame = pl.DataFrame({"body": list(bodies)}, schema={"body": pl.String})
    return frame.select(keyword(pl.col("body"))).to_series().to_list()


@pytest.mark.parametrize("word", ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"])
def test_stop_words_in_any_case_and_padding_ask_to_stop(word: str) -> None:
    bodies = [word, word.lower(), word.capitalize(), f"  {word}  ", f"\n{word.lower()}\r\n"]
    assert classify(*bodies) == ["stop"] * len(bodies)


@pytest.mark.parametrize("word", ["START", "UNSTOP", "YES"])
def test_start_words_in_any_case_and_padding_ask_to_start_again(word: str) -> None:
    bodies = [word, word.lower(), word.capitalize(), f" {word}\n", f"\t{word.lower()} "]
    assert classify(*bodies) == ["start"] * len(bodies)


@pytest.mark.parametrize("word", ["HELP", "INFO"])
def test_help_words_in_any_case_and_padding_ask_for_help(word: str) -> None:
    bodies = [word, word.lower(), word.capitalize(), f" {word}\n", f"\n\n{word.lower()}"]
    assert classify(*bodies) == ["help"] * len(bodies)


@pytest.mark.parametrize(
    "body",
    [
        "stop please",
        "STOP!",
        "don't stop",
        "",
        "   ",
        "S T O P",
        "quit it",
        "STOPP",
        "yes please",
        "Thanks, see you there",
    ],
)
def test_anything_but_a_keyword_alone_is_other(body: str) -> None:
    assert classify(body) == ["other"]


def test_a_column_of_replies_is_classified_row_by_row() -> None:
    assert classify("Stop", "yes", "info", "stop please") == ["stop", "start", "help", "other"]
