"""The `sendout` command as people use it: global --db, $SENDOUT_DB, summaries and clear errors."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from flows.cli import COMMANDS, cli
from tests.events import ses, write_ndjson


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_ingest_prints_a_summary_a_person_can_read(runner, tmp_path: Path) -> None:
    write_ndjson(tmp_path / "a.ndjson", [ses("Delivery"), ses("Open"), "not an event"])
    db = tmp_path / "w.duckdb"

    result = runner.invoke(cli, ["--db", str(db), "ingest", str(tmp_path / "a.ndjson")])

    assert result.exit_code == 0, result.output
    assert "files read 1, skipped (already ingested) 0" in result.output
    assert "events new 2, duplicate 0, quarantined 1, unmatched 2" in result.output
    assert "quarantine" in result.output


def test_ingest_json_is_one_object_with_the_same_figures(runner, tmp_path: Path) -> None:
    write_ndjson(tmp_path / "a.ndjson", [ses("Delivery"), ses("Delivery")])
    db = tmp_path / "w.duckdb"

    result = runner.invoke(cli, ["--db", str(db), "ingest", "--json", str(tmp_path)])

    assert json.loads(result.output) == {
        "files_read": 1,
        "files_skipped": 0,
        "records": 2,
        "events_new": 1,
        "events_duplicate": 1,
        "quarantined": 0,
        "unmatched": 1,
        "retimed": 0,
    }


def test_the_warehouse_comes_from_sendout_db_when_no_option_is_given(
    runner, tmp_path: Path, monkeypatch
) -> None:
    write_ndjson(tmp_path / "a.ndjson", [ses("Delivery")])
    monkeypatch.setenv("SENDOUT_DB", str(tmp_path / "from-env.duckdb"))

    result = runner.invoke(cli, ["ingest", str(tmp_path / "a.ndjson")])

    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-env.duckdb").exists()


def test_the_provider_can_be_named(runner, tmp_path: Path) -> None:
    write_ndjson(tmp_path / "a.ndjson", [ses("Delivery")])

    result = runner.invoke(
        cli,
        [
            "--db",
            str(tmp_path / "w.duckdb"),
            "ingest",
            "--provider",
            "sendgrid",
            "--json",
            str(tmp_path),
        ],
    )

    assert json.loads(result.output)["quarantined"] == 1  # an SES record is no SendGrid event


def test_a_missing_path_is_one_clear_sentence_and_exit_code_1(runner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["--db", str(tmp_path / "w.duckdb"), "ingest", "nowhere.json"])

    assert result.exit_code == 1
    assert result.output.strip() == "Error: nowhere.json does not exist"


def test_a_folder_of_nothing_ingest_reads_names_its_files_and_fails(runner, tmp_path: Path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "1.csv").write_text("email,status\nada@example.com,bounced\n")
    (folder / "2.ndjson").write_text('{"hello": "world"}\n')  # no provider's shape

    result = runner.invoke(cli, ["--db", str(tmp_path / "w.duckdb"), "ingest", str(folder)])

    assert result.exit_code == 1
    assert "no file could be read as provider events" in result.output
    assert "1.csv" in result.output and "2.ndjson" in result.output


def test_files_ingest_did_not_understand_are_named_beside_those_it_read(runner, tmp_path):
    folder = tmp_path / "landing"
    folder.mkdir()
    write_ndjson(folder / "a.ndjson", [ses("Delivery")])
    (folder / "notes.md").write_text("# not events\n")

    result = runner.invoke(cli, ["--db", str(tmp_path / "w.duckdb"), "ingest", str(folder)])

    assert result.exit_code == 0, result.output
    assert "events new 1" in result.output
    assert "Not understood as provider events:" in result.output and "notes.md" in result.output


def test_an_unknown_provider_name_is_refused(runner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["ingest", "--provider", "pigeon", str(tmp_path)])

    assert result.exit_code == 2
    assert "'pigeon' is not one of" in result.output


def test_contacts_import_reports_each_rejected_row(runner, tmp_path: Path) -> None:
    csv = tmp_path / "people.csv"
    csv.write_text(
        "first_name,last_name,email,mobile\n"
        "Ada,Lovelace,ada@example.com,07911 123456\n"
        "Bob,Bad,bob@,\n"
    )

    result = runner.invoke(
        cli, ["--db", str(tmp_path / "w.duckdb"), "contacts", "import", str(csv), "--region", "GB"]
    )

    assert result.exit_code == 0, result.output
    assert "contacts created 1, updated 0, rejected 1" in result.output
    assert "line 3: 'bob@' is not a valid email address" in result.output


def test_contacts_import_dry_run_says_what_would_change_and_changes_nothing(
    runner, tmp_path: Path
) -> None:
    db = str(tmp_path / "w.duckdb")
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("first_name,last_name,email,mobile\nAda,Lovelace,ada@example.com,\n")
    second.write_text("first_name,last_name,email,mobile\nAda,King,ada@example.com,\n")
    runner.invoke(cli, ["--db", db, "contacts", "import", str(first)])

    dry = runner.invoke(cli, ["--db", db, "contacts", "import", str(second), "--dry-run"])
    again = runner.invoke(
        cli, ["--db", db, "contacts", "import", str(second), "--dry-run", "--json"]
    )

    assert dry.exit_code == 0, dry.output
    assert "Dry run, nothing changed" in dry.output
    assert "line 2: contact 1: last name 'Lovelace' → 'King'" in dry.output
    assert json.loads(again.output)["changed"] == [
        {"row": 2, "reason": "contact 1: last name 'Lovelace' → 'King'"}
    ]


def test_contacts_import_of_a_file_without_the_columns_says_which_are_missing(
    runner, tmp_path: Path
) -> None:
    csv = tmp_path / "people.csv"
    csv.write_text("name,phone\nAda,07911 123456\n")

    result = runner.invoke(
        cli, ["--db", str(tmp_path / "w.duckdb"), "contacts", "import", str(csv)]
    )

    assert result.exit_code == 1
    assert "no column first_name, last_name, email, mobile" in result.output


HELP_THEN_LIST_MODULES = """
import sys
import flows.cli
sys.argv = ["sendout", "--help"]
try:
    flows.cli.main()
except SystemExit:
    pass
print(sorted({m.split(".")[0] for m in sys.modules} & {"duckdb", "polars", "pyarrow", "warehouse"}))
"""


def test_every_command_is_where_the_help_says_and_help_loads_none_of_them() -> None:
    for module in {module for module, _ in COMMANDS.values()}:
        importlib.import_module(module)
    shown = subprocess.run(
        [sys.executable, "-c", HELP_THEN_LIST_MODULES], capture_output=True, text=True
    )

    assert sorted(cli.commands) == sorted(COMMANDS)
    assert "ingester" in shown.stdout  # the help itself
    assert shown.stdout.splitlines()[-1] == "[]"  # answered without the data libraries


def test_ingesting_the_landing_folder_says_nothing_of_the_sandboxs_events_not_yet_due(
    tmp_path, monkeypatch
):
    """`sendout ingest data/landing` reads what is due; the sandbox's held-back events are
    its own, not files it failed to understand."""
    from flows.dispatch import run_dispatch
    from flows.settings import Settings
    from tests.warehouse_builders import add_people, create_sendout

    db, landing = tmp_path / "w.duckdb", tmp_path / "landing"
    add_people(db, 5)
    run_dispatch(db, create_sendout(db), Settings(landing=landing))
    assert list(landing.rglob("*.pending"))  # opens and clicks to come

    result = CliRunner().invoke(cli, ["--db", str(db), "ingest", str(landing)])

    assert result.exit_code == 0, result.output
    assert "Not understood" not in result.output
