"""Contact import: normalised values, per-row errors, and re-import that updates in place."""

import subprocess
import sys
from pathlib import Path

import pytest

from warehouse.contact_rows import ContactImportError, parse_contacts_csv
from warehouse.contacts import import_contacts

HEADER = "first_name,last_name,email,mobile\n"


def import_text(db_path: Path, tmp_path: Path, text: str, region: str = "GB"):
    path = tmp_path / "contacts.csv"
    path.write_text(text, newline="")
    return import_contacts(db_path, path, region)


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
        (4, "'12' is not a valid phone number of GB (no +country code)"),
        (5, "no email and no mobile"),
    ]
    assert [r["email"] for r in query("SELECT email FROM contacts ORDER BY contact_id")] == [
        "ada@example.com",
        "ed@example.com",
    ]


def test_a_row_with_one_good_address_is_kept_with_it_and_the_other_is_said(
    db_path, tmp_path, query
) -> None:
    report = import_text(
        db_path,
        tmp_path,
        HEADER + "Ada,,ada@example.com,07700 9\n" + "Bob,,bob@,+14155552671\n",
    )

    assert (report.created, report.rejected) == (2, [])
    assert [(r.row, r.reason) for r in report.partly] == [
        (
            2,
            "'07700 9' is not a valid phone number of GB (no +country code): kept with the "
            "email only",
        ),
        (3, "'bob@' is not a valid email address: kept with the mobile only"),
    ]
    assert query("SELECT first_name, email, mobile FROM contacts ORDER BY contact_id") == [
        {"first_name": "Ada", "email": "ada@example.com", "mobile": None},
        {"first_name": "Bob", "email": None, "mobile": "+14155552671"},
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
    assert [r.row for r in report.merged] == [3]


def test_a_header_with_a_byte_order_mark_and_other_case_is_understood(db_path, tmp_path, query):
    path = tmp_path / "excel.csv"
    path.write_bytes(
        "\ufeffFirst_Name,LAST_NAME,Email,Mobile\r\nAda,L,ada@example.com,\r\n".encode()
    )
    report = import_contacts(db_path, path)

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

    with pytest.raises(ContactImportError, match="not UTF-8"):
        import_contacts(db_path, path)


def test_a_failed_import_leaves_the_contacts_as_they_were(db_path, tmp_path, query) -> None:
    import_text(db_path, tmp_path, HEADER + "Ada,L,ada@example.com,\n")
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\x00\x01\x02\xff")

    with pytest.raises(ContactImportError):
        import_contacts(db_path, path)
    assert query("SELECT count(*) AS n FROM contacts") == [{"n": 1}]


# --- what a probe found: nothing lost, nothing overwritten without a word ---------------------


def test_an_unclosed_quote_loses_only_its_own_line(db_path, tmp_path, query) -> None:
    report = import_text(
        db_path,
        tmp_path,
        HEADER
        + "Ada,Lovelace,ada@example.com,\n"
        + '"Bob,Builder,bob@example.com,\n'
        + "Cy,Young,cy@example.com,\n"
        + "Di,Prince,di@example.com,\n",
    )

    assert [(r.row, r.reason) for r in report.rejected] == [
        (3, "a quote opened on this line is never closed")
    ]
    assert [r["email"] for r in query("SELECT email FROM contacts ORDER BY contact_id")] == [
        "ada@example.com",
        "cy@example.com",
        "di@example.com",
    ]


def test_a_stray_carriage_return_and_old_mac_line_ends_are_read(db_path, tmp_path, query):
    import_text(db_path, tmp_path, HEADER + "Ada\r,Love\rlace,ada@example.com,\n")
    path = tmp_path / "mac.csv"
    path.write_bytes(b"first_name,last_name,email,mobile\rBob,B,bob@example.com,\r")
    import_contacts(db_path, path)

    assert query("SELECT first_name, last_name FROM contacts ORDER BY contact_id") == [
        {"first_name": "Ada", "last_name": "Love lace"},
        {"first_name": "Bob", "last_name": "B"},
    ]


def test_a_huge_cell_rejects_its_row_only(db_path, tmp_path, query) -> None:
    report = import_text(
        db_path,
        tmp_path,
        HEADER + "x" * 200_000 + ",L,ada@example.com,\nBob,B,bob@example.com,\n",
    )

    assert [(r.row, r.reason) for r in report.rejected] == [
        (2, "a cell of 200,000 characters (at most 1,000)")
    ]
    assert query("SELECT email FROM contacts") == [{"email": "bob@example.com"}]


def test_nul_bytes_and_a_header_only_file_are_not_a_crash(db_path, tmp_path) -> None:
    report = import_text(db_path, tmp_path, HEADER + "A\x00da,L,ada@example.com,\n")
    assert report.created + len(report.rejected) == 1

    assert import_text(db_path, tmp_path, HEADER).created == 0
    with pytest.raises(ContactImportError, match="empty"):
        import_text(db_path, tmp_path, "\n\n")


def test_the_same_email_in_four_cases_is_one_contact_and_each_merge_is_said(db_path, tmp_path):
    report = import_text(
        db_path,
        tmp_path,
        HEADER
        + "Ada,L,ada@example.com,\n"
        + "Ada,L,ADA@example.com,\n"
        + "Ada,L,Ada@Example.com,\n"
        + "Ada,King,ada@EXAMPLE.COM,\n",
    )

    assert report.created == 1
    assert [r.row for r in report.merged] == [3, 4, 5]
    assert "the same person as line 2 (ada@example.com)" in report.merged[0].reason


def test_a_row_of_one_person_mobile_and_another_email_in_the_file_is_rejected(db_path, tmp_path):
    report = import_text(
        db_path,
        tmp_path,
        HEADER + "Ada,L,ada@example.com,07911 123456\nBob,B,bob@example.com,07911 123456\n",
    )

    assert report.created == 1
    assert [r.row for r in report.rejected] == [3]
    assert "also on line 2, with ada@example.com" in report.rejected[0].reason


def test_a_number_with_an_extension_is_refused_not_cut(db_path, tmp_path) -> None:
    report = import_text(db_path, tmp_path, HEADER + "Ada,L,,07911 123456;ext=1\n")

    assert [(r.row, r.reason) for r in report.rejected] == [
        (2, "'07911 123456;ext=1' has an extension (1), which no message can reach")
    ]


def test_a_landline_is_kept_and_flagged_for_sms(db_path, tmp_path, query) -> None:
    report = import_text(
        db_path, tmp_path, HEADER + "Ada,L,ada@example.com,020 7946 0000\nBob,B,,07911 123456\n"
    )

    assert report.created == 2
    assert [(r.row, r.reason) for r in report.no_sms] == [
        (2, "+442079460000 is a landline: kept, but it is never sent SMS")
    ]
    assert query("SELECT mobile, mobile_is_landline FROM contacts ORDER BY contact_id") == [
        {"mobile": "+442079460000", "mobile_is_landline": True},
        {"mobile": "+447911123456", "mobile_is_landline": False},
    ]


def test_a_row_matching_a_contact_by_mobile_with_another_email_overwrites_nothing(
    db_path, tmp_path, query
):
    import_text(db_path, tmp_path, HEADER + "Ada,Lovelace,ada@example.com,07911 123456\n")

    report = import_text(db_path, tmp_path, HEADER + "Bob,Builder,bob@example.com,07911123456\n")

    assert (report.created, report.updated) == (0, 0)
    assert [r.row for r in report.conflicts] == [2]
    assert "contact 1's, whose email is ada@example.com" in report.conflicts[0].reason
    assert query("SELECT first_name, email FROM contacts") == [
        {"first_name": "Ada", "email": "ada@example.com"}
    ]


def test_a_row_with_one_contacts_email_and_anothers_mobile_changes_neither(
    db_path, tmp_path, query
):
    import_text(db_path, tmp_path, HEADER + "Ada,L,ada@example.com,\nBob,B,,07911 123456\n")

    report = import_text(db_path, tmp_path, HEADER + "Ada,L,ada@example.com,07911 123456\n")

    assert [r.row for r in report.conflicts] == [2]
    assert "email is contact 1's and its mobile contact 2's" in report.conflicts[0].reason
    assert query("SELECT email, mobile FROM contacts ORDER BY contact_id") == [
        {"email": "ada@example.com", "mobile": None},
        {"email": None, "mobile": "+447911123456"},
    ]


def test_every_change_to_a_contacts_name_or_address_is_reported(db_path, tmp_path) -> None:
    import_text(db_path, tmp_path, HEADER + "Ada,Lovelace,ada@example.com,07911 123456\n")

    report = import_text(db_path, tmp_path, HEADER + "Ada,King,ada@example.com,07911 123457\n")

    assert [(r.row, r.reason) for r in report.changed] == [
        (2, "contact 1: last name 'Lovelace' → 'King'; mobile '+447911123456' → '+447911123457'")
    ]


def test_a_dry_run_reports_the_same_and_changes_nothing(db_path, tmp_path, query) -> None:
    import_text(db_path, tmp_path, HEADER + "Ada,Lovelace,ada@example.com,\n")
    path = tmp_path / "next.csv"
    path.write_text(HEADER + "Ada,King,ada@example.com,\nBob,B,bob@example.com,\nx,y,z,\n")

    dry = import_contacts(db_path, path, dry_run=True)
    assert query("SELECT last_name FROM contacts") == [{"last_name": "Lovelace"}]
    real = import_contacts(db_path, path)

    assert (
        (dry.created, dry.updated, dry.changed, dry.rejected)
        == (
            real.created,
            real.updated,
            real.changed,
            real.rejected,
        )
        == (1, 1, dry.changed, dry.rejected)
    )
    assert len(dry.changed) == 1 and len(dry.rejected) == 1


def test_the_warehouse_is_free_while_a_big_file_is_read(db_path, tmp_path) -> None:
    """Parse before you lock: another process can write while the rows are being checked."""
    import_text(db_path, tmp_path, HEADER + "Ada,L,ada@example.com,\n")
    path = tmp_path / "big.csv"
    path.write_text(HEADER + "".join(f"P,{i},p{i}@example.com,\n" for i in range(25_000)))
    other_process_wrote = []

    def while_reading(done: int, total: int) -> None:
        if done < total and not other_process_wrote:
            write = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute('CHECKPOINT')"
            finished = subprocess.run(
                [sys.executable, "-c", write, str(db_path)], capture_output=True, timeout=30
            )
            other_process_wrote.append(finished.returncode == 0)

    report = import_contacts(db_path, path, progress=while_reading)

    assert other_process_wrote == [True]
    assert report.created == 25_000
