"""`sendout sendouts create|list|cancel|resend` as people and scripts use them."""

import json

import pytest
from click.testing import CliRunner

from flows.cli import cli
from warehouse.db import connect


@pytest.fixture
def sendout(db_path, tmp_path):
    people = tmp_path / "people.csv"
    people.write_text(
        "first_name,last_name,email,mobile\n"
        "Ada,Lovelace,ada@example.com,07911 123456\n"
        "Bob,,bob@example.com,\n"
    )

    def run(*args: str):
        return CliRunner().invoke(cli, ["--db", str(db_path), *args])

    run("contacts", "import", str(people))
    return run


def create(sendout, *extra: str):
    return sendout(
        "sendouts",
        "create",
        "--name",
        "News",
        "--channel",
        "email",
        "--subject",
        "Hi {first_name}",
        "--text",
        "Hello",
        *extra,
    )


def test_create_prints_the_new_id_and_json_gives_an_object(sendout):
    plain = create(sendout, "--all")
    as_json = create(sendout, "--contact", "1", "--json")

    assert plain.exit_code == 0, plain.output
    assert plain.output.splitlines()[0].startswith("so_")
    assert json.loads(as_json.output) == {
        "sendout_id": json.loads(as_json.output)["sendout_id"],
        "messages": 1,
        "without_address": 0,
        "rejected": [],
        "kept_with_one_address": [],
    }


def test_a_csv_row_with_a_mistyped_mobile_is_sent_its_email_and_said(sendout, tmp_path):
    people = tmp_path / "guests.csv"
    people.write_text("first_name,last_name,email,mobile\nCy,,cy@example.com,07700 9\n")

    plain = create(sendout, "--csv", str(people))
    as_json = json.loads(create(sendout, "--csv", str(people), "--json").output)

    assert plain.exit_code == 0, plain.output
    assert (
        "sent to one address: line 2: '07700 9' is not a valid phone number of GB "
        "(no +country code): kept with the email only" in plain.output
    )
    assert as_json["messages"] == 1 and as_json["rejected"] == []
    assert [r["row"] for r in as_json["kept_with_one_address"]] == [2]


@pytest.mark.parametrize(
    ("options", "tracked"),
    [((), True), (("--no-tracking",), False), (("--type", "non_marketing"), False)],
)
def test_create_tracks_marketing_email_unless_told_not_to(sendout, db_path, options, tracked):
    created = create(sendout, "--all", "--json", *options)
    sendout_id = json.loads(created.output)["sendout_id"]

    with connect(db_path, read_only=True) as con:
        stored = con.execute(
            "SELECT is_tracked FROM sendouts WHERE sendout_id = ?", [sendout_id]
        ).fetchall()
    assert stored == [(tracked,)]


def test_create_names_every_bad_field(sendout):
    result = sendout(
        "sendouts", "create", "--name", "x", "--channel", "email", "--sms-text", "Hi", "--all"
    )

    assert result.exit_code == 1
    assert "subject: an email needs a subject" in result.output
    assert "body: an email needs a body (HTML or text)" in result.output
    assert "sms_text: SMS text given, but SMS is not a channel" in result.output


def test_a_schedule_in_the_past_and_an_unknown_contact_are_refused(sendout):
    past = create(sendout, "--all", "--at", "2020-01-01T09:00:00+00:00")
    unknown = create(sendout, "--contact", "42")
    garbled = create(sendout, "--all", "--at", "next tuesday")

    assert "scheduled_at: the schedule is in the past" in past.output
    assert "recipients: no contact with id 42" in unknown.output
    assert garbled.exit_code == 2 and "is not a date and time" in garbled.output


def test_list_shows_scheduled_and_cancelled_send_outs(sendout):
    later = create(sendout, "--all", "--at", "2099-01-01T09:00:00+00:00", "--json")
    sendout_id = json.loads(later.output)["sendout_id"]

    before = json.loads(sendout("sendouts", "list", "--json").output)
    cancelled = sendout("sendouts", "cancel", sendout_id)
    after = json.loads(sendout("sendouts", "list", "--json").output)
    again = sendout("sendouts", "cancel", sendout_id)

    assert [(r["status"], r["planned"]) for r in before] == [("Scheduled", 2)]
    assert cancelled.output.strip() == f"cancelled {sendout_id}"
    assert [r["status"] for r in after] == ["Cancelled"]
    assert again.exit_code == 1 and "already cancelled" in again.output


def test_resend_to_someone_else(sendout):
    first = json.loads(create(sendout, "--contact", "1", "--json").output)["sendout_id"]

    result = sendout("sendouts", "resend", first, "--to", "2", "--json")

    assert json.loads(result.output)["messages"] == 1


def test_resend_needs_exactly_one_kind_of_recipients(sendout):
    first = json.loads(create(sendout, "--all", "--json").output)["sendout_id"]

    neither = sendout("sendouts", "resend", first)
    both = sendout("sendouts", "resend", first, "--to", "2", "--non-openers")

    assert neither.exit_code == both.exit_code == 2
    assert "give either --to/--to-csv or --non-openers" in neither.output
