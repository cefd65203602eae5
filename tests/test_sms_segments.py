"""SMS segments (DESIGN §5): GSM-7 is 160 characters alone or 153 per part, the extension
characters counting double; anything else is UCS-2, 70 UTF-16 units alone or 67 per part."""

import polars as pl
import pytest

from warehouse.sms import is_gsm7, segments, sms_segments

GSM_ACCENTED = "éèùìòÇØøÅåÄÖÑÜäöñüàßÉ¿¡£¥§"
GSM_EXTENSION = "^{}\\[~]|€\f"
CURLY_QUOTES = ["\u201c", "\u201d", "\u2019"]  # left and right double quotes, apostrophe
NOT_GSM = ["ê", "á", "í", "ó", "ú", "ç", "ж", "中", "😀", *CURLY_QUOTES]
EMOJI = "😀"  # U+1F600, outside the basic plane: two UTF-16 code units


@pytest.mark.parametrize(
    ("length", "expected"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_text_is_160_characters_alone_or_153_per_part(length: int, expected: int) -> None:
    assert sms_segments("a" * length) == expected


def test_gsm7_text_of_161_characters_is_two_segments() -> None:
    assert sms_segments("Your parcel is on its way. " * 5 + "x" * 26) == 2


@pytest.mark.parametrize("char", list(GSM_EXTENSION), ids=repr)
def test_gsm_extension_characters_are_gsm7(char: str) -> None:
    assert is_gsm7(char)


@pytest.mark.parametrize("char", list(GSM_EXTENSION), ids=repr)
def test_gsm_extension_characters_count_double(char: str) -> None:
    assert sms_segments(char * 80) == 1
    assert sms_segments(char * 81) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [("€" * 80, 1), ("€" * 81, 2), ("a" * 159 + "{", 2), ("a" * 158 + "{", 1)],
    ids=["80 euros", "81 euros", "159 letters and a brace", "158 letters and a brace"],
)
def test_extension_characters_push_a_text_into_more_segments(text: str, expected: int) -> None:
    assert sms_segments(text) == expected


@pytest.mark.parametrize("char", list(GSM_ACCENTED))
def test_accented_characters_of_the_gsm_alphabet_stay_gsm7(char: str) -> None:
    assert is_gsm7(f"Caf{char} ouvert")
    assert sms_segments(char * 160) == 1


@pytest.mark.parametrize("char", NOT_GSM)
def test_characters_outside_the_gsm_alphabet_force_ucs2(char: str) -> None:
    assert not is_gsm7(f"Caf{char} ouvert")
    assert sms_segments("a" * 69 + char) == (1 if char != EMOJI else 2)


@pytest.mark.parametrize(
    ("length", "expected"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_text_is_70_characters_alone_or_67_per_part(length: int, expected: int) -> None:
    assert sms_segments("ж" * length) == expected


def test_one_non_gsm_character_makes_a_whole_160_character_text_ucs2() -> None:
    assert sms_segments("a" * 159 + "ê") == 3


def test_extension_characters_count_once_in_ucs2_text() -> None:
    assert sms_segments("ж" + "€" * 69) == 1


@pytest.mark.parametrize(("count", "expected"), [(1, 1), (35, 1), (36, 2), (67, 2), (68, 3)])
def test_an_emoji_outside_the_basic_plane_counts_as_two_units(count: int, expected: int) -> None:
    assert sms_segments(EMOJI * count) == expected


def test_the_empty_text_is_one_segment_because_an_empty_sms_is_still_billed() -> None:
    assert is_gsm7("")
    assert sms_segments("") == 1


def test_newline_and_carriage_return_are_gsm7() -> None:
    text = "Hello\r\nSee you at 10\n"
    assert is_gsm7(text)
    assert len(text * 7) == 147
    assert sms_segments(text * 7) == 1
    assert sms_segments("a\n" * 80 + "\r") == 2  # 161 characters


def test_the_polars_expression_agrees_with_sms_segments_and_gives_0_for_no_text() -> None:
    texts = ["", "a" * 160, "a" * 161, "€" * 81, "ж" * 71, EMOJI * 36, "Hi\r\n", None]
    frame = pl.DataFrame({"text": texts})
    counted = frame.select(segments(pl.col("text"))).to_series().to_list()
    assert counted == [1, 1, 2, 2, 2, 2, 1, 0]
    assert counted[:-1] == [sms_segments(text) for text in texts[:-1]]
