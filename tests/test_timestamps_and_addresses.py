"""Provider timestamps in every documented form become the same UTC instant; addresses normalise."""

from datetime import UTC, datetime

import duckdb
import pytest

from warehouse.addresses import InvalidAddressError, normalise_email, normalise_phone
from warehouse.parsers import install_macros


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    install_macros(con)
    yield con
    con.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-14T10:00:02.913Z", datetime(2024, 5, 14, 10, 0, 2, 913000, UTC)),
        ("2024-05-14T10:00:02Z", datetime(2024, 5, 14, 10, 0, 2, tzinfo=UTC)),
        ("2024-05-14T10:00:02", datetime(2024, 5, 14, 10, 0, 2, tzinfo=UTC)),
        ("2024-05-14T06:00:02-04:00", datetime(2024, 5, 14, 10, 0, 2, tzinfo=UTC)),
        ("2024-05-14 12:00:02+02:00", datetime(2024, 5, 14, 10, 0, 2, tzinfo=UTC)),
        ("2024-05-14T10:00:02.9130259Z", datetime(2024, 5, 14, 10, 0, 2, 913025, UTC)),
        ("2024-05-14T05:00:02.9130259-05:00", datetime(2024, 5, 14, 10, 0, 2, 913025, UTC)),
        ("1715680802", datetime(2024, 5, 14, 10, 0, 2, tzinfo=UTC)),
        ("1715680802.913", datetime(2024, 5, 14, 10, 0, 2, 913000, UTC)),
        (" 1715680802 ", datetime(2024, 5, 14, 10, 0, 2, tzinfo=UTC)),
    ],
)
def test_every_timestamp_form_is_read_as_utc(con, text: str, expected: datetime) -> None:
    [(parsed,)] = con.execute("SELECT event_time(?)", [text]).fetchall()
    assert parsed == expected


@pytest.mark.parametrize("text", ["yesterday", "2024-13-45T99:00:00Z", "", "1e400", None])
def test_an_unreadable_timestamp_is_null_not_an_error(con, text: str | None) -> None:
    assert con.execute("SELECT event_time(?)", [text]).fetchall() == [(None,)]


def test_epoch_numbers_in_json_read_like_their_string_form(con) -> None:
    [(as_int, as_float)] = con.execute(
        """
        SELECT event_time(from_json('{"t": 1715680802}', '{"t": "VARCHAR"}').t),
               event_time(from_json('{"t": 1715680802.5}', '{"t": "VARCHAR"}').t)
        """
    ).fetchall()
    assert as_int == datetime(2024, 5, 14, 10, 0, 2, tzinfo=UTC)
    assert as_float == datetime(2024, 5, 14, 10, 0, 2, 500000, UTC)


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("  Ada@Example.COM ", "ada@example.com"),
        ('"Ada Lovelace" <Ada@Example.com>', "ada@example.com"),
    ],
)
def test_provider_email_addresses_are_trimmed_and_lower_cased(con, raw: str, stored: str) -> None:
    assert con.execute("SELECT email_address(?)", [raw]).fetchall() == [(stored,)]


def test_enhanced_status_codes_are_found_inside_smtp_text(con) -> None:
    rows = con.execute(
        "SELECT enhanced_status(?), enhanced_status(?), enhanced_status(?)",
        ["smtp; 550 5.1.1 user unknown", "452 4.2.2 mailbox full", "250 OK"],
    ).fetchall()
    assert rows == [("5.1.1", "4.2.2", None)]


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("07911 123456", "GB", "+447911123456"),
        ("+44 (0)7911 123456", "US", "+447911123456"),
        ("(415) 555-2671", "US", "+14155552671"),
    ],
)
def test_phone_numbers_become_e164(raw: str, region: str, e164: str) -> None:
    assert normalise_phone(raw, region) == e164


@pytest.mark.parametrize("raw", ["123", "not a number", "+44 7911", "07911 123456 ext"])
def test_invalid_phone_numbers_are_refused_with_the_value(raw: str) -> None:
    with pytest.raises(InvalidAddressError, match="phone number"):
        normalise_phone(raw, "GB")


@pytest.mark.parametrize(
    "raw", ["plainaddress", "a@b", "two@@example.com", "sp ace@example.com", "a@-x.com"]
)
def test_invalid_email_addresses_are_refused(raw: str) -> None:
    with pytest.raises(InvalidAddressError, match="not a valid email address"):
        normalise_email(raw)


def test_no_address_at_all_is_said_so_and_an_email_is_no_phone_number() -> None:
    with pytest.raises(InvalidAddressError, match=r"^no email address was given$"):
        normalise_email("  ")
    with pytest.raises(InvalidAddressError, match=r"^no phone number was given$"):
        normalise_phone("", "GB")
    with pytest.raises(InvalidAddressError, match="is an email address, not a phone number"):
        normalise_phone("john@example.org", "GB")


def test_a_number_without_its_country_code_needs_a_region():
    from warehouse.addresses import InvalidAddressError, normalise_phone

    assert normalise_phone("07911 123456", "GB") == "+447911123456"
    assert normalise_phone("+44 7911 123456") == "+447911123456"
    with pytest.raises(InvalidAddressError, match="has no country code"):
        normalise_phone("07911 123456")
