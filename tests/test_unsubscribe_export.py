"""The Unsubscribes export is safe to open in a spreadsheet: no cell runs as a formula."""

import csv
import io
from pathlib import Path

import pytest

from warehouse import unsubscribes
from warehouse.db import open_warehouse
from warehouse.unsubscribes import safe_cell

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize(
    "value",
    [
        '=HYPERLINK("http://evil","x")',
        "+447911123456",
        "-2+3",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
        "=",
    ],
)
def test_a_cell_that_a_spreadsheet_would_run_is_prefixed_with_a_quote(value: str) -> None:
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize(
    "value",
    ["eve@example.com", "manual", "all", "Wrong word in a reply: no=stop", "", "'quoted"],
)
def test_other_text_is_unchanged(value: str) -> None:
    assert safe_cell(value) == value


def test_no_value_becomes_an_empty_cell() -> None:
    assert safe_cell(None) == ""


def test_a_number_becomes_its_text() -> None:
    assert safe_cell(-5) == "'-5"
    assert safe_cell(42) == "42"


def test_the_export_normalises_the_address_and_defuses_formulas(db_path: Path) -> None:
    changed_by = "=cmd|' /C calc'!A0"
    note = '=HYPERLINK("http://x")'
    with open_warehouse(db_path) as con:
        unsubscribes.add(con, "email", "  Eve@Example.com ", "all", changed_by, note)
        exported = unsubscribes.export_csv(con)

    header, *rows = list(csv.reader(io.StringIO(exported)))
    [row] = [dict(zip(header, cells, strict=True)) for cells in rows]
    assert row["channel"] == "email"
    assert row["address"] == "eve@example.com"
    assert row["reason"] == "manual"
    assert row["added_by"] == "'" + changed_by
    assert row["note"] == "'" + note
    assert row["sendout_id"] == ""
    cells = [cell for line in [header, *rows] for cell in line]
    assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)]


def test_an_export_of_a_filtered_page_holds_exactly_the_entries_shown(tmp_path: Path) -> None:
    with open_warehouse(tmp_path / "w.duckdb") as con:
        for address in ("a@example.com", "b@example.com", "c@example.com"):
            unsubscribes.add(con, "email", address, "all", "ops", "asked")
        exported = unsubscribes.export_csv(
            con, only=[("email", "b@example.com", "manual"), ("sms", "+447911123456", "manual")]
        )

    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [(r["address"], r["reason"]) for r in rows] == [("b@example.com", "manual")]
