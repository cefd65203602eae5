"""Contact import: normalised values, per-row errors, and re-import that updates in place."""

from pathlib import Path

import pytest

from warehouse.contacts import ContactImportError, import_contacts, parse_contacts_csv
from warehouse.db import open_warehouse

HEADER = "first_name,last_name,email,mobile\n"


def import_text(db_path: Path, tmp_path: Path, text: str, region: str = "GB"):
    path = tmp_path / "contacts.csv"
    path.write_text(text)
    with open_warehouse(db_path) as con:
        return import_contacts(con, path, region)


def test_values_are_normalised_on_import(db_path, tmp_path, query) -> None:
    report = import_text(
        db_path, tmp_path, HEADER + " Ada , Lovelace , Ada@Example.COM , 07911 123456 \n"
    )

    assert (report.created, report.updated, report.rejected) == (1, 0, [])
    assert query("SELECT first_name, last_name, email, mobile FROM contacts") == [
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.com",
            "mobile": "+447911123456",
        }
    ]


def test_invalid_rows_are_reported_and_valid_rows_still_imported(db_path, tmp_path, query) -> None:
    report = import_text(
        db_path,
        tmp_path,
        HEADER
        + "Ada,Lovelace,ada@example.com,\n"
        + "Bob,,bob@example,\n"
        + "Cy,,,12\n"
        + "Di,,,\n"
        + "Ed,,ed@example.com,+14155552671\n",
    )

    assert (report.created, report.updated) == (2, 0)
    assert [(r.row, r.reason) for r in report.rejected] == [
        (3, "'bob@example' is not a valid email address"),
        (4, "'12' is not a valid phone number"),
        (5, "no email and no mobile"),
    ]
    assert [r["email"] for r in query("SELECT email FROM contacts ORDER BY contact_id")] == [
        "ada@example.com",
        "ed@example.com",
    ]


def test_reimport_updates_the_contact_instead_of_adding_another(db_path, tmp_path, query) -> None:
    import_text(db_path, tmp_path, HEADER + "Ada,Lovelace,ada@example.com,07911 123456\n")

    report = import_text(db_path, tmp_path, HEADER + "Ada,King,ADA@example.com,\n")

    assert (report.created, report.updated) == (0, 1)
    assert query("SELECT last_name, mobile FROM contacts") == [
        {"last_name": "King", "mobile": "+447911123456"}  # the empty mobile cell kept the old one
    ]


def test_a_contact_without_email_is_matched_by_mobile(db_path, tmp_path, query) -> None:
    import_text(db_path, tmp_path, HEADER + "Sam,,,07911 123456\n")

    report = import_text(db_path, tmp_path, HEADER + "Samuel,,sam@example.com,+44 7911 123456\n")

    assert (report.created, report.updated) == (0, 1)
    assert query("SELECT first_name, email FROM contacts") == [
        {"first_name": "Samuel", "email": "sam@example.com"}
    ]


def test_the_same_person_twice_in_one_file_is_one_contact_with_the_later_row(
    db_path, tmp_path, query
):
    report = import_text(
        db_path, tmp_path, HEADER + "Ada,One,ada@example.com,\nAda,Two,ada@example.com,\n"
    )

    assert report.created == 1
    assert query("SELECT last_name FROM contacts") == [{"last_name": "Two"}]


def test_a_header_with_a_byte_order_mark_and_other_case_is_understood(db_path, tmp_path, query):
    path = tmp_path / "excel.csv"
    path.write_bytes(
        "\ufeffFirst_Name,LAST_NAME,Email,Mobile\r\nAda,L,ada@example.com,\r\n".encode()
    )
    with open_warehouse(db_path) as con:
        report = import_contacts(con, path)

    assert report.created == 1


def test_cells_that_look_like_formulas_are_stored_as_plain_text(db_path, tmp_path, query):
    import_text(
        db_path, tmp_path, HEADER + '"=HYPERLINK(""http://x"")",@SUM(A1),eve@example.com,\n'
    )

    assert query("SELECT first_name, last_name FROM contacts") == [
        {"first_name": '=HYPERLINK("http://x")', "last_name": "@SUM(A1)"}
    ]


def test_a_row_with_more_cells_than_the_header_is_rejected(db_path, tmp_path):
    report = import_text(db_path, tmp_path, HEADER + "Ada,L,ada@example.com,,surprise\n")

    assert [(r.row, r.reason) for r in report.rejected] == [
        (2, "more cells than the header has columns")
    ]


def test_missing_columns_are_named(tmp_path) -> None:
    with pytest.raises(ContactImportError, match="no column mobile"):
        parse_contacts_csv("first_name,last_name,email\nAda,L,ada@example.com\n")


def test_a_file_that_is_not_utf8_is_refused_whole(db_path, tmp_path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(HEADER.encode() + "Zoë,Ü,zoe@example.com,\n".encode("latin-1"))

    with open_warehouse(db_path) as con, pytest.raises(ContactImportError, match="not UTF-8"):
        import_contacts(con, path)


def test_a_failed_import_leaves_the_contacts_as_they_were(db_path, tmp_path, query) -> None:
    import_text(db_path, tmp_path, HEADER + "Ada,L,ada@example.com,\n")
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\x00\x01\x02\xff")

    with open_warehouse(db_path) as con, pytest.raises(ContactImportError):
        import_contacts(con, path)
    assert query("SELECT count(*) AS n FROM contacts") == [{"n": 1}]
