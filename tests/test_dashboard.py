"""Every dashboard page rendered by Streamlit's AppTest against a small warehouse built here,
with its key widgets exercised."""

import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from flows.dispatch import run_dispatch
from flows.senders.sandbox import release_due
from flows.settings import Settings, settings
from tests.events import ses, soon, twilio_inbound, write_ndjson
from tests.warehouse_builders import (
    add_long_unsubscribe_list,
    add_people,
    create_sendout,
    run_refresh,
)
from warehouse import unsubscribes
from warehouse.db import connect, open_warehouse
from warehouse.ingest import ingest_paths

APP = "../dashboards/app.py"  # AppTest resolves it against this file


@pytest.fixture(scope="module")
def sent_a_day_ago(tmp_path_factory) -> tuple[Path, str]:
    """60 contacts and a send-out to them by email and SMS through the sandbox, a day after:
    its deliveries, opens and replies ingested. Built once; each test gets a copy."""
    folder = tmp_path_factory.mktemp("sent")
    db, landing = folder / "warehouse.duckdb", folder / "landing"
    add_people(db, 60)
    sendout_id = create_sendout(db, channels=("email", "sms"))
    run_dispatch(db, sendout_id, Settings(landing=landing))
    release_due(landing, now=datetime.now(UTC) + timedelta(days=1))  # a day later
    ingest_paths(db, [landing])
    run_refresh(db)
    return db, sendout_id


@pytest.fixture
def warehouse(sent_a_day_ago, tmp_path: Path, monkeypatch) -> tuple[Path, str]:
    template, sendout_id = sent_a_day_ago
    db, landing = tmp_path / template.name, tmp_path / "landing"
    shutil.copy(template, db)
    shutil.copytree(template.parent / "landing", landing)
    st.cache_data.clear()
    monkeypatch.setenv("SENDOUT_DB", str(db))
    monkeypatch.setenv("SENDOUT_LANDING", str(landing))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    settings.cache_clear()
    yield db, sendout_id
    settings.cache_clear()


def app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60).run()


def test_messages_lists_the_send_outs_with_status_and_progress(warehouse):
    at = app()

    assert not at.exception
    [table] = at.dataframe
    assert table.value["name"].tolist() == ["News"]
    assert table.value["status"].tolist() == ["Delivered"]
    assert table.value["progress"].tolist() == [1.0]


def test_messages_counts_recipients_as_people_not_messages(warehouse):
    at = app()  # 60 people, each sent an email and an SMS

    [table] = at.dataframe

    assert table.value["recipients"].tolist() == [60]


def test_details_show_counts_doughnut_rates_and_recipients(warehouse):
    _, sendout_id = warehouse
    at = app()
    at.session_state["sendout_id"] = sendout_id
    at.switch_page("views/sendout.py").run()

    assert not at.exception
    assert [t.label for t in at.tabs] == ["Emails", "SMS"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Status"] == "Delivered"
    assert metrics["Messages done"] == "120 of 120"
    assert "Open rate" in metrics and metrics["Open rate"].endswith("%")
    assert len(at.get("plotly_chart")) == 2
    recipients = at.dataframe[0].value
    assert len(recipients) == 50  # the first page of 60
    assert at.button(key="next-email").disabled is False


def test_details_price_each_sms_but_not_each_email(warehouse):
    """An SMS costs by its length, so its row says what it cost; every email costs the same
    (the send-out's cost says it), so the email table spends no column on it."""
    _, sendout_id = warehouse
    at = app()
    at.session_state["sendout_id"] = sendout_id
    at.switch_page("views/sendout.py").run()

    email_table, sms_table = (frame.proto.column_order for frame in at.dataframe[:2])
    assert "cost" not in email_table and "open_count" in email_table
    assert "cost" in sms_table and "open_count" not in sms_table


def test_details_say_who_may_have_been_sent_twice_only_where_someone_may(warehouse):
    """A dispatch run that died while sending leaves its messages flagged; a send-out without
    any spends no column of empty boxes on it."""
    db, sendout_id = warehouse
    at = app()
    at.session_state["sendout_id"] = sendout_id
    at.switch_page("views/sendout.py").run()
    clean = at.dataframe[0].proto.column_order
    with connect(db) as con:
        [(flagged,)] = con.execute(
            "UPDATE messages SET is_possible_duplicate = true WHERE channel = 'email' AND "
            "recipient = (SELECT min(recipient) FROM messages WHERE channel = 'email') "
            "RETURNING recipient"  # the first row of the first page
        ).fetchall()
    st.cache_data.clear()
    at.run()

    assert "is_possible_duplicate" not in clean
    email = at.dataframe[0]
    assert "is_possible_duplicate" in email.proto.column_order
    rows = email.value.set_index("recipient")["is_possible_duplicate"]
    assert rows[flagged] and rows.sum() == 1


def test_unsubscribes_add_then_remove_by_hand(warehouse):
    at = app()
    at.switch_page("views/unsubscribes.py").run()
    before = len(at.dataframe[0].value)

    at.text_input(key="add-address").input("Someone@Example.com")
    at.text_input(key="add-note").input("asked at the front desk")
    at.button(key="add").click().run()
    added = at.dataframe[0].value
    at.selectbox(key="remove-entry").select("email someone@example.com")
    at.text_input(key="remove-note").input("changed their mind")
    at.checkbox(key="remove-confirm").check().run()
    at.button(key="remove").click().run()

    assert not at.exception
    assert len(added) == before + 1
    assert "someone@example.com" in added["address"].tolist()
    assert "someone@example.com" not in at.dataframe[0].value["address"].tolist()


def test_unsubscribes_lists_an_entry_with_a_note_far_down_a_long_list(warehouse):
    db, _ = warehouse
    add_long_unsubscribe_list(db)

    at = app()
    at.switch_page("views/unsubscribes.py").run()

    assert not at.exception
    listed = at.dataframe[0].value
    assert listed["why"].tolist()[-1] == "replied 'stop it please'"  # the note says why
    assert listed["why"].tolist().count("replied 'stop it please'") == 1


def test_adding_by_hand_says_what_it_did_or_why_not_and_keeps_a_wrong_entry(warehouse):
    at = app()
    at.switch_page("views/unsubscribes.py").run()

    at.text_input(key="add-address").input("not an address")
    at.text_input(key="add-note").input("asked at the desk")
    at.button(key="add").click().run()
    refused = [e.value for e in at.error]
    kept = at.text_input(key="add-address").value
    at.text_input(key="add-address").input("walk-in@example.com")
    at.button(key="add").click().run()
    done = [s.value for s in at.success]
    at.run()  # the next look at the page still says it

    assert not at.exception
    assert len(refused) == 1 and "not a valid email address" in refused[0]
    assert kept == "not an address"  # the person corrects it instead of typing it again
    assert done == ["walk-in@example.com is on the Unsubscribes list"]
    assert [s.value for s in at.success] == done
    assert at.text_input(key="add-address").value == ""


def test_lookup_explains_an_address(warehouse):
    at = app()
    at.switch_page("views/lookup.py").run()

    at.text_input(key="address").input("p1@example.com").run()

    assert not at.exception
    assert at.subheader[0].value == "p1@example.com"
    assert "Not on the Unsubscribes list." in [c.value for c in at.caption]
    assert at.markdown  # the checklist's advice


def test_lookup_advice_in_the_dashboard_points_to_its_own_pages(warehouse):
    db, _ = warehouse
    with open_warehouse(db) as con:
        unsubscribes.add(con, "email", "p2@example.com", "all", "ops", "asked by phone")
    at = app()
    at.switch_page("views/lookup.py").run()

    at.text_input(key="address").input("p2@example.com").run()

    advice = " ".join(m.value for m in at.markdown)
    assert "on the Unsubscribes page" in advice
    assert "sendout unsubscribes" not in advice


def test_lookup_of_no_address_is_a_clear_error(warehouse):
    at = app()
    at.switch_page("views/lookup.py").run()

    at.text_input(key="address").input("nonsense").run()
    nonsense = at.error[0].value
    at.text_input(key="address").input("12").run()

    assert nonsense == (
        "'nonsense' is neither an email address nor a phone number. To find someone by name, "
        "search the recipients on a send-out's page."
    )
    assert at.error[0].value.startswith("'12' is not a valid phone number")


def test_compose_shows_errors_next_to_fields_then_sends_through_the_sandbox(warehouse):
    db, _ = warehouse
    at = app()
    at.switch_page("views/new_sendout.py").run()

    at.button(key="send").click().run()
    errors = [e.value for e in at.error]
    at.text_input(key="name").input("Reminder")
    at.text_input(key="subject").input("See you tomorrow, {first_name}")
    at.text_area(key="text").input("Doors open at 9.")
    at.radio(key="type").set_value("non_marketing")
    at.button(key="send").click().run()
    question = at.warning[0].value
    at.button(key="yes").click().run()

    assert "Give the send-out a name" in errors
    assert "Send **Reminder** now to 60 people?" in question
    assert not at.exception
    deadline = time.monotonic() + 60
    sent = 0
    while time.monotonic() < deadline and sent < 60:
        time.sleep(0.5)
        try:
            with connect(db, read_only=True, lock_timeout=5) as con:
                sent = con.sql(
                    "SELECT count(*) FROM messages JOIN sendouts USING (sendout_id) "
                    "WHERE name = 'Reminder' AND outcome IS NOT NULL"
                ).fetchall()[0][0]
        except Exception:  # the background dispatch holds the file for a moment
            continue
    assert sent == 60


def test_a_compose_error_goes_as_soon_as_its_field_is_fixed(warehouse):
    at = app()
    at.switch_page("views/new_sendout.py").run()
    at.button(key="send").click().run()
    before = [e.value for e in at.error]

    at.text_input(key="name").input("Reminder").run()

    after = [e.value for e in at.error]
    assert "Give the send-out a name" in before
    assert "Give the send-out a name" not in after
    assert "An email needs a subject" in after  # the others stay until fixed


def test_tracking_follows_the_type_until_it_is_chosen_by_hand(warehouse):
    db, _ = warehouse
    at = app()
    at.switch_page("views/new_sendout.py").run()
    tracking = at.checkbox(key="tracking")

    marketing_default = tracking.value
    at.radio(key="type").set_value("non_marketing").run()
    other_default = at.checkbox(key="tracking").value
    at.radio(key="type").set_value("marketing").run()
    at.checkbox(key="tracking").uncheck().run()
    at.radio(key="type").set_value("non_marketing").run()
    at.radio(key="type").set_value("marketing").run()
    kept = at.checkbox(key="tracking").value
    at.text_input(key="name").input("Quiet news")
    at.text_input(key="subject").input("News")
    at.text_area(key="text").input("Hello")
    at.toggle(key="later").set_value(True).run()
    at.button(key="send").click().run()
    at.button(key="yes").click().run()

    assert (marketing_default, other_default, kept) == (True, False, False)
    assert not at.exception
    with connect(db, read_only=True) as con:
        stored = con.sql("SELECT is_tracked FROM sendouts WHERE name = 'Quiet news'").fetchall()
    assert stored == [(False,)]


def test_the_sms_text_shows_its_segments_and_cost_as_you_type(warehouse):
    at = app()
    at.switch_page("views/new_sendout.py").run()
    at.multiselect(key="channels").set_value(["sms"]).run()

    at.text_area(key="sms").input("x" * 161).run()

    assert any("161 characters · GSM-7 · 2 segments" in c.value for c in at.caption)


def test_details_resend_to_non_openers_starts_a_new_send_out(warehouse):
    db, sendout_id = warehouse
    at = app()
    at.session_state["sendout_id"] = sendout_id
    at.switch_page("views/sendout.py").run()

    at.button(key="resend-non-openers").click().run()
    asked = [w.value for w in at.warning]
    at.button(key="resend-yes").click().run()

    assert any("again to" in question for question in asked)  # how many, asked first
    assert at.session_state["sendout_id"] == sendout_id  # still on the send-out being read
    assert not at.exception
    assert any("Sent again to" in s.value for s in at.success)
    with connect(db, read_only=True, lock_timeout=30) as con:
        [(count,)] = con.execute(
            "SELECT count(*) FROM sendouts WHERE resend_of = ?", [sendout_id]
        ).fetchall()
    assert count == 1


def test_details_resend_to_typed_addresses_says_who_could_not_be_reached(warehouse):
    db, sendout_id = warehouse
    at = app()
    at.session_state["sendout_id"] = sendout_id
    at.switch_page("views/sendout.py").run()

    at.text_area(key=f"resend-typed-{sendout_id}").input("guest@example.org\nnot an address").run()
    at.button(key="resend-to-button").click().run()
    asked = [w.value for w in at.warning]
    at.button(key="resend-yes").click().run()

    # whom it reaches, and who not and why, asked before anything goes
    assert any("again to 1 person?" in question for question in asked), asked
    assert any(
        "typed address 2: 'not an address' is neither an email address nor a phone number" in q
        for q in asked
    )
    [said] = [s.value for s in at.success if "Sent again to 1 person" in s.value]
    assert (
        "typed address 2: 'not an address' is neither an email address nor a phone number" in said
    )
    assert at.text_area(key=f"resend-typed-{sendout_id}").value == ""  # not to be sent again
    with connect(db, read_only=True, lock_timeout=30) as con:
        sent = con.execute(
            "SELECT messages.recipient, contacts.is_listed FROM messages JOIN sendouts"
            " USING (sendout_id) JOIN contacts USING (contact_id) WHERE resend_of = ?",
            [sendout_id],
        ).fetchall()
    assert sent == [("guest@example.org", False)]  # sent to, not made a contact


def test_contacts_picked_stay_picked_when_the_search_changes(warehouse):
    at = app()
    at.switch_page("views/new_sendout.py").run()
    at.radio(key="recipients-how").set_value("Pick contacts").run()
    at.text_input(key="picked-search").input("P1").run()
    first_search = at.multiselect(key="picked").options
    at.multiselect(key="picked").select(2).run()  # contact 2: P1
    at.text_input(key="picked-search").input("P5").run()
    at.multiselect(key="picked").select(6).run()  # contact 6: P5

    assert "P1 · p1@example.com · +447911100001" in first_search  # both addresses said
    assert at.multiselect(key="picked").value == [2, 6]


def test_what_was_typed_to_resend_and_its_result_stay_with_their_send_out(warehouse, tmp_path):
    db, first = warehouse
    second = create_sendout(db)
    run_dispatch(db, second, Settings(landing=tmp_path / "landing"))
    at = app()
    at.session_state["sendout_id"] = first
    at.switch_page("views/sendout.py").run()
    at.text_area(key=f"resend-typed-{first}").input("guest@example.org").run()
    at.multiselect(key=f"resend-to-{first}").select(1).run()  # contact 1
    picked = at.multiselect(key=f"resend-to-{first}").value

    at.session_state["sendout_id"] = second
    at.switch_page("views/sendout.py").run()
    typed_there = at.text_area(key=f"resend-typed-{second}").value
    picked_there = at.multiselect(key=f"resend-to-{second}").value
    at.session_state["sendout_id"] = first  # back, to send it to someone
    at.switch_page("views/sendout.py").run()
    at.text_area(key=f"resend-typed-{first}").input("guest@example.org").run()
    at.button(key="resend-to-button").click().run()
    at.button(key="resend-yes").click().run()
    said_here = [s.value for s in at.success]
    at.session_state["sendout_id"] = second
    at.switch_page("views/sendout.py").run()

    assert picked == [1]
    assert (typed_there, picked_there) == ("", [])
    assert any("Sent again to 1 person" in s for s in said_here)
    assert not any("Sent again" in s.value for s in at.success)  # said where it was done
    assert "resend-yes" not in {b.key for b in at.button}


def test_a_reply_can_be_put_on_the_unsubscribes_list_from_the_sms_tab(warehouse, tmp_path):
    db, sendout_id = warehouse
    mobile = "+447911100000"  # P0's, who got the SMS
    later = soon()
    ingest_paths(
        db,
        [
            write_ndjson(
                tmp_path / "reply.ndjson",
                [twilio_inbound("SMreply", mobile, "wrong person", later)],
            )
        ],
    )
    run_refresh(db)
    at = app()
    at.session_state["sendout_id"] = sendout_id
    at.switch_page("views/sendout.py").run()

    at.button(key=f"unsub-{mobile}-SMreply:received:").click().run()

    assert not at.exception
    assert f"{mobile} is on the Unsubscribes list" in [s.value for s in at.success]
    with connect(db, read_only=True) as con:
        assert con.execute(
            "SELECT reason, sendout_id FROM unsubscribes WHERE address = ?", [mobile]
        ).fetchall() == [("manual", sendout_id)]


def test_a_reply_shows_as_written_without_links_images_or_colours_of_its_own(warehouse, tmp_path):
    db, sendout_id = warehouse
    body = "see [my site](http://evil.example) ![](http://evil.example/t.png) :red[**!**]"
    reply = twilio_inbound("SModd", "+447911100001", body, soon())
    ingest_paths(db, [write_ndjson(tmp_path / "reply.ndjson", [reply])])
    run_refresh(db)
    at = app()
    at.session_state["sendout_id"] = sendout_id
    at.switch_page("views/sendout.py").run()

    [shown] = [m.value for m in at.markdown if "my site" in m.value]
    assert "[my site](http" not in shown and "![](" not in shown  # no live link, no image
    assert "\\[my site\\]\\(http\\://evil\\.example\\)" in shown
    assert "\\:red\\[" in shown


def test_a_send_out_whose_dispatch_died_holding_it_is_not_offered_to_cancel(warehouse):
    db, _ = warehouse
    due = create_sendout(db, scheduled_at=datetime.now(UTC) + timedelta(days=1))
    with open_warehouse(db) as con:  # due 10 minutes ago; a dispatch claimed it, then died
        con.execute(
            "UPDATE sendouts SET scheduled_at = now() - INTERVAL 10 MINUTES WHERE sendout_id = ?",
            [due],
        )
        con.execute("UPDATE messages SET claimed_by = 'dead-run' WHERE sendout_id = ?", [due])
    at = app()
    at.session_state["sendout_id"] = due
    at.switch_page("views/sendout.py").run()

    [waiting] = [w.value for w in at.warning if w.value.startswith("Nothing has gone out")]
    assert waiting.endswith("ask whoever runs Sendout to check it.")  # no "cancel it below"
    assert f"cancel-{due}" not in {b.key for b in at.button}
    assert "resend-to-button" not in {b.key for b in at.button}


def test_the_sms_cost_is_split_into_what_was_sent_and_the_replies(warehouse, tmp_path):
    db, sendout_id = warehouse
    reply = twilio_inbound("SMcost", "+447911100000", "thanks", soon())
    ingest_paths(db, [write_ndjson(tmp_path / "reply.ndjson", [reply])])
    run_refresh(db)
    at = app()
    at.session_state["sendout_id"] = sendout_id
    at.switch_page("views/sendout.py").run()

    split = [c.value for c in at.caption if "replies and what answered them" in c.value]

    assert not at.exception
    assert len(split) == 1
    assert split[0].startswith("Sent SMS ") and split[0].endswith(" GBP")


def test_a_bad_address_a_send_out_found_can_be_corrected(warehouse, tmp_path):
    db, sendout_id = warehouse
    with connect(db, read_only=True) as con:
        [(message_id, contact_id)] = con.execute(
            "SELECT message_id, contact_id FROM messages WHERE sendout_id = ? "
            "AND recipient = 'p7@example.com'",
            [sendout_id],
        ).fetchall()
    bounce = ses("Bounce", "p7@example.com", message_id, status="5.1.1", at=soon())
    ingest_paths(db, [write_ndjson(tmp_path / "bounce.ndjson", [bounce])])
    run_refresh(db)
    at = app()
    at.switch_page("views/unsubscribes.py").run()

    at.selectbox(key="sendout-filter").select(sendout_id).run()
    at.text_input(key="new-p7@example.com").input("P7@Example.org")
    at.button(key="fix-p7@example.com").click().run()

    assert not at.exception
    assert "The contact's email is now p7@example.org" in at.success[0].value
    with connect(db, read_only=True) as con:
        assert con.execute(
            "SELECT email FROM contacts WHERE contact_id = ?", [contact_id]
        ).fetchall() == [("p7@example.org",)]
        listed = {a for (a,) in con.sql("SELECT address FROM unsubscribes").fetchall()}
        audited = con.sql("SELECT subject FROM audit_entries WHERE action = 'correct_address'")
        [(subject,)] = audited.fetchall()
    assert "p7@example.com" in listed and "p7@example.org" not in listed
    assert subject == f"P7 (contact {contact_id})"  # whom, in words, on Who did what


def test_send_now_asks_whom_it_reaches_and_sends_nothing_until_yes(warehouse):
    """One press of Send now only asks: the send-out's name, how many people, who lacks an
    address for a channel; No leaves nothing behind, and a change of the draft asks again."""
    db, _ = warehouse
    with open_warehouse(db) as con:  # one of the 60 has no mobile
        con.execute("UPDATE contacts SET mobile = NULL WHERE email = 'p7@example.com'")
    at = app()
    at.switch_page("views/new_sendout.py").run()
    at.text_input(key="name").input("Reminder")
    at.multiselect(key="channels").set_value(["email", "sms"]).run()
    at.text_input(key="subject").input("See you")
    at.text_area(key="text").input("Doors open at 9.")
    at.text_area(key="sms").input("Doors open at 9.")
    at.button(key="send").click().run()
    question = at.warning[0].value
    at.button(key="no").click().run()
    after_no = len(at.warning)
    at.button(key="send").click().run()
    at.text_input(key="name").input("Reminder, again").run()

    assert "Send **Reminder** now to 60 people?" in question
    assert "1 of the people chosen has no mobile number and gets no SMS." in question
    assert after_no == 0 and not any(b.key == "yes" for b in at.button)
    with connect(db, read_only=True) as con:
        assert con.sql("SELECT count(*) FROM sendouts WHERE name LIKE 'Reminder%'").fetchall() == [
            (0,)
        ]
        assert con.sql("SELECT count(*) FROM contacts").fetchall() == [(60,)]


def test_a_resend_question_stays_with_its_send_out(warehouse):
    """Asked about one send-out, then another chosen: the question goes, nothing is sent."""
    db, sendout_id = warehouse
    other = create_sendout(db, channels=("sms",))
    at = app()
    at.session_state["sendout_id"] = sendout_id
    at.switch_page("views/sendout.py").run()
    at.button(key="resend-non-openers").click().run()
    at.selectbox[0].select(other).run()

    assert not at.exception
    assert not any(b.key == "resend-yes" for b in at.button)
    assert any("is for emails; this sent none" in c.value for c in at.caption)
    with connect(db, read_only=True) as con:
        assert con.sql("SELECT count(*) FROM sendouts WHERE resend_of IS NOT NULL").fetchall() == [
            (0,)
        ]


def test_a_scheduled_send_out_says_when_it_goes_and_can_be_cancelled_there(warehouse):
    db, _ = warehouse
    later = datetime.now(UTC) + timedelta(days=2)
    scheduled = create_sendout(db, scheduled_at=later)
    at = app()
    at.session_state["sendout_id"] = scheduled
    at.switch_page("views/sendout.py").run()
    said = " ".join(c.value for c in at.caption)
    offered = {b.key for b in at.button}
    at.button(key=f"cancel-{scheduled}").click().run()
    at.button(key=f"cancel-yes-{scheduled}").click().run()

    assert "goes out " in said and f"{later.year}" in said
    assert "resend-to-button" not in offered  # nothing went yet: nothing to send again
    assert any("is cancelled; nothing will be sent" in s.value for s in at.success)
    with connect(db, read_only=True) as con:
        [(cancelled,)] = con.execute(
            "SELECT cancelled_at FROM sendouts WHERE sendout_id = ?", [scheduled]
        ).fetchall()
    assert cancelled is not None


def test_a_send_out_due_minutes_ago_that_has_not_started_says_so_and_can_be_cancelled(warehouse):
    db, sent = warehouse
    due = create_sendout(db, scheduled_at=datetime.now(UTC) + timedelta(days=1))
    with open_warehouse(db) as con:  # its time came and went with no scheduler running
        con.execute(
            "UPDATE sendouts SET scheduled_at = now() - INTERVAL 10 MINUTES WHERE sendout_id = ?",
            [due],
        )
    at = app()  # the Messages page
    listed = [w.value for w in at.warning]
    at.session_state["sendout_id"] = due
    at.switch_page("views/sendout.py").run()
    waiting, status = [w.value for w in at.warning], at.metric[0].value
    offered = {b.key for b in at.button}
    at.button(key=f"cancel-{due}").click().run()
    at.button(key=f"cancel-yes-{due}").click().run()
    cancelled = [s.value for s in at.success]
    never_went = set(at.dataframe[0].value["why"])  # its recipients, still Queued
    at.session_state["sendout_id"] = sent
    at.switch_page("views/sendout.py").run()

    assert status == "Sending..."
    said = "Nothing has gone out yet, 10 minutes after it was due"
    assert any(w.startswith(said) for w in waiting)
    assert listed == [
        "**News**: nothing has gone out yet, 10 minutes after it was due. Ask whoever runs "
        "Sendout to check that its scheduler runs, or open it to cancel it."
    ]  # and not of the send-out that went
    assert "resend-to-button" not in offered  # nothing went: nothing to send again
    assert any("is cancelled; nothing will be sent" in s for s in cancelled)
    assert never_went == {"Cancelled before it went"}
    assert not any("Nothing has gone out yet" in w.value for w in at.warning)  # it went


def test_a_skipped_recipient_says_why_in_words(warehouse):
    """A recipient on the Unsubscribes list is skipped, and the table says so in words."""
    db, _ = warehouse
    with open_warehouse(db) as con:
        unsubscribes.add(con, "email", "p3@example.com", "all", "ops", "asked by phone")
    sendout_id = create_sendout(db)
    run_dispatch(db, sendout_id, Settings(landing=db.parent / "landing"))
    at = app()
    at.session_state["sendout_id"] = sendout_id
    at.switch_page("views/sendout.py").run()
    at.selectbox(key="status-email").select("Skipped").run()
    table = at.dataframe[0].value

    why = dict(zip(table["recipient"], table["why"], strict=True))  # and those the sandbox listed
    assert why["p3@example.com"] == "On the Unsubscribes list (added by hand)"
    assert all(text.startswith("On the Unsubscribes list (") for text in why.values())
    assert "Bad number" not in at.selectbox(key="status-email").options


def test_a_half_written_send_out_is_there_again_after_a_visit_to_another_page(warehouse):
    at = app()
    at.switch_page("views/new_sendout.py").run()
    at.text_input(key="name").input("Reminder")
    at.multiselect(key="channels").set_value(["email", "sms"]).run()
    at.text_input(key="subject").input("See you")
    at.text_area(key="sms").input("Doors open at 9.").run()
    at.switch_page("views/lookup.py").run()
    at.switch_page("views/new_sendout.py").run()

    assert not at.exception
    assert at.text_input(key="name").value == "Reminder"
    assert at.multiselect(key="channels").value == ["email", "sms"]
    assert at.text_input(key="subject").value == "See you"
    assert at.text_area(key="sms").value == "Doors open at 9."
    assert not at.warning  # no complaint of a default overridden
