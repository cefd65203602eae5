"""DESIGN §11 at the `sendout` command: bad input gets a clear one-sentence error and loses
nothing. Each refusal must exit non-zero, say on stderr what was wrong (no traceback, no
"Error: None", no internal exception name) and leave the warehouse exactly as it was."""

import os
import re
import shutil
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from click.testing import CliRunner

from flows.cli import cli
from warehouse.db import connect

PEOPLE = "first_name,last_name,email,mobile\nAda,Lovelace,ada@example.com,07911 123456\n"
TABLES = ["contacts", "sendouts", "messages", "unsubscribe_changes", "users", "audit_entries"]
TABLES += ["events", "ingested_files", "quarantine"]
INTERNAL = re.compile(r"Traceback|Error: None|\w+(Error|Exception)\b|_duckdb|File \"/")
PW = "--password-stdin"
CREATE = ["sendouts", "create", "--name", "News", "--channel", "email"]
BODY = ["--subject", "Hi {first_name}", "--text", "Hello"]


def sendout(db: Path, *args, stdin: str | None = None):
    return CliRunner().invoke(cli, ["--db", str(db), *map(str, args)], input=stdin)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A warehouse with something in it to lose: a contact, a send-out, an entry, a user."""
    folder = tmp_path_factory.mktemp("template")
    (folder / "people.csv").write_text(PEOPLE)
    db = folder / "w.duckdb"
    for args, stdin in [
        (["contacts", "import", folder / "people.csv"], None),
        ([*CREATE, *BODY, "--all"], None),
        (["unsubscribes", "add", "email", "old@example.com", "--reason", "asked"], None),
        (["users", "add", "ada", "--role", "admin", PW], "pw long enough\n"),
    ]:
        assert sendout(db, *args, stdin=stdin).exit_code == 0
    return db


@pytest.fixture
def db(template, tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)  # relative defaults (landing folder, snapshot) stay in here
    for name in os.listdir(template.parent):
        if name.startswith("w.duckdb"):
            shutil.copy(template.parent / name, tmp_path / name)
    return tmp_path / "w.duckdb"


def state(path: Path, may_change=()) -> dict:
    with connect(path, read_only=True) as con:
        tables = [t for t in TABLES if t not in may_change]
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}


def assert_refused(result, *words) -> None:
    """Non-zero exit, no crash, and stderr names each word (a tuple: any one of them)."""
    assert result.exit_code != 0, f"accepted (exit 0):\n{result.output}"
    crash = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
    assert isinstance(result.exception, SystemExit), f"crashed:\n{result.output}{crash}"
    assert not INTERNAL.search(result.output), result.output
    for word in words:
        options = word if isinstance(word, tuple) else (word,)
        assert any(o.lower() in result.stderr.lower() for o in options), (word, result.stderr)


def refuses_and_keeps(db: Path, args, *words, stdin=None, may_change=()) -> None:
    before = state(db, may_change)
    assert_refused(sendout(db, *args, stdin=stdin), *words)
    after = state(db, may_change)
    changed = {t: [r for r in after[t] if r not in before[t]] for t in after}
    assert after == before, f"written anyway: { {t: rows for t, rows in changed.items() if rows} }"


def cases(table: dict):
    """A table of {id: (args..., words)} as pytest parameters named by their ids."""
    return pytest.mark.parametrize(("args", "words"), table.values(), ids=table.keys())


LATIN1 = "first_name,last_name,email,mobile\nJosé,,j@example.com,\n".encode("latin-1")
BAD_CSVS = {
    "empty-file": (b"", ["empty"]),
    "latin-1": (LATIN1, ["UTF-8"]),
    "xlsx-not-csv": (b"PK\x03\x04\x14\x00\x06\x00\x08\x00!\x00\xb5U\x9a\x93", ["UTF-8"]),
    "utf-16-from-excel": (PEOPLE.encode("utf-16"), ["UTF-8"]),
    "no-address-columns": (b"first_name,last_name\nA,B\n", ["email"]),
    "semicolons": (b"first_name;last_name;email;mobile\nA;B;c@example.com;\n", ["email"]),
    "email-twice": (b"first_name,last_name,email,mobile,email\nA,B,a@x.org,,b@x.org\n", ["email"]),
}


@cases(BAD_CSVS)
def test_contacts_import_refuses_a_file_it_cannot_read_whole(db, tmp_path, args, words):
    """A staff member importing the wrong or broken CSV is told why, and no contact changes."""
    (tmp_path / "people.csv").write_bytes(args)
    refuses_and_keeps(db, ["contacts", "import", tmp_path / "people.csv"], *words)


def test_contacts_import_names_every_odd_row_and_imports_the_good_ones(db, tmp_path):
    """Header BOMs, formulas and odd numbers: good rows land as written, each bad line is named."""
    rows = [
        "\ufefffirst_name,last_name,email,mobile",
        '"=HYPERLINK(""http://x.example"",""hi"")",Formula,f@example.com,+44 (0)7911 123457',
        "Nan,Number,n@example.com,not a number",
        "Uni,Code,josé@exämple.com,",
        "Sp,Ace,sp ace@example.com,",
        "X" * 1_000_000 + ",Big,big@example.com,",
        "Trim,Med,  Trim@Example.com  ,",
    ]
    (tmp_path / "odd.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")

    result = sendout(db, "contacts", "import", tmp_path / "odd.csv")

    assert result.exit_code == 0, result.output
    assert all(f"line {n}:" in result.output for n in (3, 4, 5, 6)), result.output
    with connect(db, read_only=True) as con:
        sql = "SELECT first_name, email, mobile FROM contacts WHERE contact_id > 1 ORDER BY 2"
        added = con.execute(sql).fetchall()
    assert added == [
        ('=HYPERLINK("http://x.example","hi")', "f@example.com", "+447911123457"),
        ("Nan", "n@example.com", None),  # its good email kept, the mobile's problem said
        ("Trim", "trim@example.com", None),
    ]
    assert (
        "line 3: 'not a number' is neither an email address nor a phone number: kept with the "
        "email only" in result.output
    )


def test_contacts_import_with_an_unknown_region_is_refused(db, tmp_path):
    """A mistyped --region is named, not blamed on every mobile in the file."""
    (tmp_path / "people.csv").write_text(PEOPLE.replace("ada@", "ada2@"))
    refuses_and_keeps(db, ["contacts", "import", "--region", "XX", tmp_path / "people.csv"], "XX")


BAD_SENDOUTS = {
    "unknown-contact": ([*BODY, "--contact", "999"], ["999"]),
    "huge-id": ([*BODY, "--contact", "99999999999999999999"], ["contact"]),
    "no-subject": (["--subject", "", "--text", "Hello", "--all"], ["subject"]),
    "no-body": (["--subject", "Hi", "--text", "", "--all"], ["body"]),
    "past": ([*BODY, "--all", "--at", "2020-01-01T09:00+00:00"], ["past"]),
    "not-a-date": ([*BODY, "--all", "--at", "tomorrow-ish"], ["tomorrow-ish"]),
    "feb-30": ([*BODY, "--all", "--at", "2027-02-30T09:00"], ["2027-02-30"]),
    "bad-placeholders": (["--subject", "Hi {nme}", "--text", "{", "--all"], ["{nme}", "brace"]),
    "5000-ids-inline": ([*BODY, *[f"--contact={i}" for i in range(1, 5001)]], ["no contact"]),
    "unknown-channel": ([*BODY, "--channel", "fax", "--all"], ["fax"]),
    "crlf-subject": (["--subject", "Hi\r\nBcc: a@x.org", "--text", "x", "--all"], ["subject"]),
}


@cases(BAD_SENDOUTS)
def test_sendouts_create_refuses_what_cannot_be_sent(db, args, words):
    """A send-out that could not go out as written is refused whole: no send-out, no messages."""
    refuses_and_keeps(db, [*CREATE, *args], *words)


def test_sendouts_create_with_an_html_file_that_is_not_utf8_is_refused(db, tmp_path):
    """An HTML body saved in Latin-1 by an old editor is named, not a UnicodeDecodeError."""
    (tmp_path / "body.html").write_bytes("<p>Café</p>".encode("latin-1"))
    args = [*CREATE, "--subject", "Hi", "--html", tmp_path / "body.html", "--all"]
    refuses_and_keeps(db, args, ("body.html", "UTF-8"))


SQLISH = "x'; DROP TABLE messages;--@example.com"
BAD_UNSUBSCRIBES = {
    "no-reason": (["add", "email", "a@example.com", "--reason", ""], ["reason"]),
    "blank-reason": (["add", "email", "a@example.com", "--reason", "  "], ["reason"]),
    "not-an-email": (["add", "email", "hello world", "--reason", "x"], ["hello world"]),
    "not-a-number": (["add", "sms", "hello world", "--reason", "x"], ["hello world"]),
    "email-as-sms": (["add", "sms", "a@example.com", "--reason", "x"], ["a@example.com"]),
    "sql-looking": (["add", "email", SQLISH, "--reason", "x"], ["DROP TABLE"]),
    "export-to-no-folder": (["export", "-o", "no/such/x.csv"], ["no/such"]),
    "remove-unlisted": (["remove", "email", "nobody@example.com", "--reason", "x"], ["nobody@"]),
}


@cases(BAD_UNSUBSCRIBES)
def test_unsubscribes_refuses_bad_entries(db, args, words):
    """The Unsubscribes list only changes for a real address, with a reason."""
    refuses_and_keeps(db, ["unsubscribes", *args], *words)


UNKNOWN = {
    "report": (["report", "so_nope"], ["so_nope"]),
    "report-sql": (["report", "'; DROP TABLE sendouts;--"], ["DROP TABLE"]),
    "lookup": (["lookup", "not an address"], ["not an address"]),
    "lookup-empty": (["lookup", ""], ["was given"]),
    "cancel": (["sendouts", "cancel", "so_nope"], ["so_nope"]),
    "resend": (["sendouts", "resend", "so_nope", "--to", "1"], ["so_nope"]),
    "dispatch": (["dispatch", "so_nope"], ["so_nope"]),
}


@cases(UNKNOWN)
def test_an_unknown_sendout_or_address_is_named(db, args, words):
    """Asking about something that is not there says so and touches nothing."""
    refuses_and_keeps(db, args, *words)


OK_PW = "long enough pw\n"
BAD_USERS = {
    "empty-name": (["add", "", "--role", "viewer", PW], OK_PW, ["user name"]),
    "newline-name": (["add", "sam\nroot", "--role", "viewer", PW], OK_PW, ["user name"]),
    "short-password": (["add", "sam", "--role", "viewer", PW], "short\n", ["10 characters"]),
    "no-password": (["add", "sam", "--role", "viewer", PW], "", ["password"]),
    "unknown-role": (["add", "sam", "--role", "root", PW], OK_PW, ["root"]),
    "name-taken": (["add", "ADA", "--role", "viewer", PW], OK_PW, ["ada"]),
    "set-short": (["set-password", "ada", PW], "short\n", ["10 characters"]),
    "remove-unknown": (["remove", "nobody"], None, ["nobody"]),
}


@pytest.mark.parametrize(("args", "stdin", "words"), BAD_USERS.values(), ids=BAD_USERS.keys())
def test_users_refuses_bad_names_roles_and_passwords(db, args, stdin, words):
    """No login is added or changed from a bad name or password; existing ones survive."""
    refuses_and_keeps(db, ["users", *args], *words, stdin=stdin)


def test_ingest_refuses_paths_that_hold_no_events(db, tmp_path):
    """A wrong path, a pipe or a device is named, and nothing is ingested."""
    os.mkfifo(tmp_path / "pipe.ndjson")
    for path, word in [
        (tmp_path / "nope.ndjson", "nope.ndjson"),
        (tmp_path / "pipe.ndjson", "named pipe"),
        ("/dev/null", "/dev/null"),
    ]:
        refuses_and_keeps(db, ["ingest", path], word)


def test_ingest_of_a_contacts_csv_is_refused_and_only_quarantined(db, tmp_path):
    """The wrong CSV is named; only its documented quarantine record is kept (docs/warehouse.md)."""
    (tmp_path / "people.csv").write_text(PEOPLE)
    args = ["ingest", tmp_path / "people.csv"]
    refuses_and_keeps(db, args, "people.csv", may_change=("ingested_files", "quarantine"))


def test_empty_but_well_formed_input_is_a_quiet_success(db, tmp_path):
    """A header-only CSV or an empty landing folder is normal: exit 0, nothing changed."""
    (tmp_path / "landing").mkdir()
    (tmp_path / "header.csv").write_text(PEOPLE.splitlines()[0] + "\n")
    before = state(db)
    for args, said in [
        (["ingest", tmp_path / "landing"], "files read 0"),
        (["contacts", "import", tmp_path / "header.csv"], "created 0"),
    ]:
        result = sendout(db, *args)
        assert result.exit_code == 0 and said in result.output, result.output
    assert state(db) == before


@pytest.mark.parametrize("content", [b"hello, I am not a database\n", b""], ids=["text", "empty"])
def test_db_that_is_not_a_warehouse_is_refused_and_left_alone(tmp_path, content):
    """`--db` on the wrong file says so and never overwrites that file."""
    target = tmp_path / "not-a-db.duckdb"
    target.write_bytes(content)
    (tmp_path / "people.csv").write_text(PEOPLE)
    for args in (["report"], ["contacts", "import", tmp_path / "people.csv"]):
        assert_refused(sendout(target, *args), "not-a-db.duckdb")
        assert target.read_bytes() == content


def test_db_that_is_a_directory_is_refused(tmp_path):
    """`--db` on a folder is named as a folder, and nothing is created in it."""
    assert_refused(sendout(tmp_path, "report"), "directory")
    assert os.listdir(tmp_path) == []


def test_an_unknown_default_region_setting_is_named_once(db):
    """A mistyped $SENDOUT_DEFAULT_REGION is named as the setting, not blamed on each number."""
    before = state(db)
    args = ["--db", db, "unsubscribes", "add", "sms", "07911 123456", "--reason", "asked"]

    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "SENDOUT_DEFAULT_REGION": "XX"},
    )

    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert "$SENDOUT_DEFAULT_REGION is not valid: 'XX' is not a country code" in result.stderr
    assert state(db) == before


def test_a_forwarding_number_setting_that_is_no_number_is_named_at_start(db):
    """$SENDOUT_FORWARD_TO is checked when Sendout starts, not when the first reply is to be
    forwarded to it."""
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "--db", str(db), "report"],
        capture_output=True,
        text=True,
        env={**os.environ, "SENDOUT_FORWARD_TO": "the office"},
    )

    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert (
        "$SENDOUT_FORWARD_TO is not valid: 'the office' is neither an email address nor a phone "
        "number" in result.stderr
    )


def test_a_forwarding_number_setting_is_read_as_people_write_numbers(monkeypatch):
    """Written without +country code, it is a number of $SENDOUT_DEFAULT_REGION and handed on
    in E.164, as a send-out's own forwarding number is."""
    from warehouse.settings import WarehouseSettings

    monkeypatch.setenv("SENDOUT_DEFAULT_REGION", "US")
    monkeypatch.setenv("SENDOUT_FORWARD_TO", "(201) 555-0123")

    assert WarehouseSettings().forward_to == "+12015550123"


def test_a_misspelt_setting_name_is_named_with_the_setting_it_was_meant_to_be(db, tmp_path):
    """A typo in a setting's name in `.env` would leave the default in force (mail to the
    sandbox instead of the relay); it is refused, with the name it was perhaps meant to be."""
    (tmp_path / ".env").write_text("SENDOUT_EMAIL_SENDR=smtp\n")
    before = state(db)

    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "--db", str(db), "report"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )

    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert (
        "$SENDOUT_EMAIL_SENDR is not a Sendout setting: did you mean $SENDOUT_EMAIL_SENDER?"
        in result.stderr
    )
    assert state(db) == before


@pytest.mark.parametrize(
    "args",
    [["report"], ["lookup", "ann@example.org"], ["unsubscribes", "list"], ["sendouts", "list"]],
)
def test_a_command_that_reads_names_a_warehouse_that_is_not_there(tmp_path, args):
    """A mistyped --db must not answer with an empty new warehouse ("nothing was sent")."""
    missing = tmp_path / "dta" / "sendout.duckdb"

    result = CliRunner().invoke(cli, ["--db", str(missing), *args])

    assert_refused(result, "there is no warehouse at", "--db")
    assert not missing.parent.exists() or not any(missing.parent.iterdir())


@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [
        ("SENDOUT_EMAIL_COST", "-1", "greater than or equal to 0"),
        ("SENDOUT_SMS_SEGMENT_COST", "nan", "finite number"),
        ("SENDOUT_CURRENCY", "euro", "'euro' is not a currency code"),
    ],
)
def test_a_price_below_nothing_or_a_currency_that_is_no_code_is_named(db, setting, value, said):
    """Every cost is computed with these: a negative price or a word for a currency would
    show wrong money on every page."""
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "--db", str(db), "report"],
        capture_output=True,
        text=True,
        env={**os.environ, setting: value},
    )

    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert f"${setting} is not valid" in result.stderr and said in result.stderr
