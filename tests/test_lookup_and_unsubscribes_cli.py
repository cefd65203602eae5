"""`sendout lookup` explains what happened to one address; `sendout unsubscribes` edits the list
by hand with who and why."""

import csv
import io
import json

import pytest
from click.testing import CliRunner

from flows.cli import cli
from tests.events import ses
from tests.warehouse_builders import add_message, add_sendout, ingest_events, run_refresh


@pytest.fixture
def sendout(db_path):
    def run(*args: str):
        return CliRunner().invoke(cli, ["--db", str(db_path), *args])

    return run


def test_lookup_of_a_bounced_address_says_it_is_listed_and_what_to_do(db_path, tmp_path, sendout):
    add_sendout(db_path, "s1", communication_type="non_marketing")
    add_message(db_path, "m1", "s1", "ada@example.com")
    ingest_events(db_path, tmp_path, [ses("Bounce", "ada@example.com", "m1", status="5.1.1")])
    run_refresh(db_path)

    result = sendout("lookup", " ADA@example.com ", "--json")

    found = json.loads(result.output)
    assert found["address"] == "ada@example.com"
    assert [e["reason"] for e in found["entries"]] == ["bad_email"]
    assert [(m["status"], m["communication_type"]) for m in found["messages"]] == [
        ("Bad email", "non_marketing")
    ]
    assert any("rejected" in line and "typos" in line for line in found["advice"])


def test_lookup_of_a_delivered_unopened_email_points_to_the_spam_folder(db_path, tmp_path, sendout):
    add_sendout(db_path, "s1")
    add_message(db_path, "m1", "s1", "bob@example.com")
    ingest_events(db_path, tmp_path, [ses("Delivery", "bob@example.com", "m1")])
    run_refresh(db_path)

    result = sendout("lookup", "bob@example.com")

    assert "bob@example.com (email) is not on the Unsubscribes list." in result.output
    assert "Delivered" in result.output
    assert "spam or junk folder" in result.output
    assert "safe senders" in result.output


def test_lookup_of_a_marketing_unsubscribe_explains_non_marketing_still_arrives(
    db_path, tmp_path, sendout
):
    add_sendout(db_path, "s1", communication_type="marketing")
    add_sendout(db_path, "s2", communication_type="non_marketing")
    add_message(db_path, "m1", "s1", "cy@example.com")
    add_message(db_path, "m2", "s2", "cy@example.com")
    ingest_events(db_path, tmp_path, [ses("Subscription", "cy@example.com", "m1")])
    run_refresh(db_path)

    found = json.loads(sendout("lookup", "cy@example.com", "--json").output)

    assert [(e["reason"], e["scope"]) for e in found["entries"]] == [("unsubscribed", "marketing")]
    assert any("non-marketing messages still reach it" in line for line in found["advice"])


def test_lookup_of_an_unknown_address_says_nothing_was_sent(sendout):
    result = sendout("lookup", "+44 7911 123456")

    assert "+447911123456 (sms) is not on the Unsubscribes list." in result.output
    assert "Nothing was sent to this address" in result.output


def test_lookup_of_someone_who_clicked_says_it_reached_them_not_to_look_in_spam(
    db_path, tmp_path, sendout
):
    add_sendout(db_path, "s1")
    add_message(db_path, "m1", "s1", "dee@example.com")
    ingest_events(
        db_path,
        tmp_path,
        [ses("Delivery", "dee@example.com", "m1"), ses("Click", "dee@example.com", "m1")],
    )
    run_refresh(db_path)

    result = sendout("lookup", "dee@example.com")

    assert "Clicked" in result.output
    assert "They opened the latest message" in result.output
    assert "not opened" not in result.output


def test_lookup_of_a_policy_block_blames_the_filter_not_the_address(db_path, tmp_path, sendout):
    add_sendout(db_path, "s1")
    add_message(db_path, "m1", "s1", "eve@example.com")
    ingest_events(db_path, tmp_path, [ses("Bounce", "eve@example.com", "m1", status="5.7.1")])
    run_refresh(db_path)

    advice = json.loads(sendout("lookup", "eve@example.com", "--json").output)["advice"]

    assert any(
        "refused a message (Blocked as spam or by policy (5.7.1))" in line and "DKIM" in line
        for line in advice
    )
    assert not any("typos" in line for line in advice)


def mailbox_full(address: str, message_id: str) -> dict:
    """SES's soft bounce of a message to a full mailbox."""
    return ses(
        "Bounce",
        address,
        message_id,
        status="4.2.2",
        bounce_type="Transient",
        subtype="MailboxFull",
    )


def test_lookup_of_a_full_mailbox_says_the_address_is_right(db_path, tmp_path, sendout):
    add_sendout(db_path, "s1")
    add_message(db_path, "m1", "s1", "fay@example.com")
    full = mailbox_full("fay@example.com", "m1")
    ingest_events(db_path, tmp_path, [full])
    run_refresh(db_path)

    advice = json.loads(sendout("lookup", "fay@example.com", "--json").output)["advice"]

    assert any(
        "Their mailbox was full (Mailbox full (4.2.2)): the address is right" in line
        for line in advice
    ), advice
    assert not any("typos" in line for line in advice)


def test_lookup_still_says_typos_when_a_mailbox_once_full_then_took_a_message_and_one_bounced(
    db_path, tmp_path, sendout
):
    add_sendout(db_path, "s1")
    add_sendout(db_path, "s2")
    add_message(db_path, "m1", "s1", "gus@example.com")
    add_message(db_path, "m2", "s2", "gus@example.com")
    full = mailbox_full("gus@example.com", "m1")
    delivered = ses("Delivery", "gus@example.com", "m1", at="2026-11-02T10:00:00.000Z")
    unknown = ses("Bounce", "gus@example.com", "m2", status="5.1.1")
    ingest_events(db_path, tmp_path, [full, delivered, unknown])
    run_refresh(db_path)

    advice = json.loads(sendout("lookup", "gus@example.com", "--json").output)["advice"]

    assert any("mailbox was full" in line for line in advice)
    assert any("check the address for typos" in line for line in advice)


def test_lookup_takes_a_phone_number_written_with_spaces(sendout):
    result = sendout("lookup", "+44", "7911", "123456")

    assert result.exit_code == 0
    assert "+447911123456 (sms)" in result.output


def test_lookup_of_something_that_is_no_address_is_one_clear_error(sendout):
    result = sendout("lookup", "not-an-address")

    assert (result.exit_code, result.output.strip()) == (
        1,
        "Error: 'not-an-address' is neither an email address nor a phone number",
    )


def test_add_list_remove_and_history_by_hand(sendout):
    added = sendout(
        "unsubscribes", "add", "sms", "07911 123456", "--reason", "replied 'stpo'", "--by", "ana"
    )
    listed = sendout("unsubscribes", "list", "--json")
    removed = sendout(
        "unsubscribes",
        "remove",
        "sms",
        "+447911123456",
        "--reason",
        "they meant it as a joke",
        "--by",
        "ben",
    )
    history = sendout("unsubscribes", "history", "+447911123456")

    assert added.output.strip() == "added +447911123456 (sms, scope all)"
    assert [(e["address"], e["reason"], e["added_by"]) for e in json.loads(listed.output)] == [
        ("+447911123456", "manual", "ana")
    ]
    assert removed.output.strip() == "removed +447911123456 (sms, manual)"
    lines = history.output.strip().splitlines()
    assert "add manual (all)  manual by ana: replied 'stpo'" in lines[0]
    assert "remove manual (all)  manual by ben: they meant it as a joke" in lines[1]
    assert sendout("unsubscribes", "list").output.strip() == "0 entries"


def test_a_manual_change_without_a_reason_is_refused(sendout):
    result = sendout("unsubscribes", "add", "email", "a@example.com", "--reason", " ")

    assert result.exit_code == 1
    assert "say why the address is added" in result.output


def test_export_writes_a_csv_a_spreadsheet_cannot_run(sendout, tmp_path):
    sendout("unsubscribes", "add", "email", "eve@example.com", "--reason", "=1+2", "--by", "@me")
    out = tmp_path / "list.csv"

    sendout("unsubscribes", "export", "--output", str(out))

    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["address"], r["added_by"], r["note"]) for r in rows] == [
        ("eve@example.com", "'@me", "'=1+2")
    ]
