"""Composing send-outs: validation field by field, recipients, personalisation, messages created
once per (send-out, recipient, channel), cancelling and resending (DESIGN §8)."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.events import ses
from tests.warehouse_builders import ingest_events, run_refresh
from warehouse import dispatch_state, reports, resends, sendouts, unsubscribes
from warehouse.db import open_warehouse
from warehouse.sendouts import Draft, Recipients, SendoutError

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
PEOPLE = [
    ("Ada", "Lovelace", "ada@example.com", "+447911123456"),
    ("Bob", "Moss", "bob@example.com", None),
    ("Cy", None, None, "+447911654321"),
]


@pytest.fixture
def con(db_path: Path):
    with open_warehouse(db_path) as con:
        for person in PEOPLE:
            con.execute(
                "INSERT INTO contacts (first_name, last_name, email, mobile) VALUES (?, ?, ?, ?)",
                list(person),
            )
        yield con


def draft(**changes) -> Draft:
    values = {
        "name": "November news",
        "channels": ["email", "sms"],
        "communication_type": "marketing",
        "recipients": Recipients(all_contacts=True),
        "subject": "Hello {first_name}",
        "html_body": "<p>Dear {first_name} {last_name}</p>",
        "sms_text": "Hi {first_name}, news at example.org",
    }
    return Draft(**{**values, **changes})


def messages_of(con, sendout_id: str) -> list[tuple]:
    return con.execute(
        "SELECT contact_id, channel, recipient, sms_text FROM messages WHERE sendout_id = ? "
        "ORDER BY contact_id, channel",
        [sendout_id],
    ).fetchall()


def test_a_landline_gets_the_email_but_no_sms(con):
    con.execute("UPDATE contacts SET mobile_is_landline = true WHERE first_name = 'Ada'")

    created = sendouts.create(con, draft(), NOW)

    assert (created.messages, created.without_address) == (3, 3)
    assert [m[:2] for m in messages_of(con, created.sendout_id)] == [
        (1, "email"),
        (2, "email"),
        (3, "sms"),
    ]


def test_a_send_out_gets_one_message_per_recipient_and_channel_with_an_address(con):
    created = sendouts.create(con, draft(), NOW)

    assert (created.messages, created.without_address) == (4, 2)
    assert messages_of(con, created.sendout_id) == [
        (1, "email", "ada@example.com", None),
        (1, "sms", "+447911123456", "Hi Ada, news at example.org"),
        (2, "email", "bob@example.com", None),
        (3, "sms", "+447911654321", "Hi Cy, news at example.org"),
    ]


@pytest.mark.parametrize(
    ("communication_type", "tracking", "tracked"),
    [
        ("marketing", None, True),  # on by default for marketing email
        ("non_marketing", None, False),
        ("marketing", False, False),
        ("non_marketing", True, True),
    ],
)
def test_tracking_is_chosen_per_send_out_and_kept_by_a_resend(
    con, communication_type, tracking, tracked
):
    created = sendouts.create(
        con, draft(communication_type=communication_type, tracking=tracking), NOW
    )
    resent = resends.resend_to(con, created.sendout_id, Recipients(contact_ids=[2]), NOW)

    stored = con.execute(
        "SELECT is_tracked FROM sendouts WHERE sendout_id IN (?, ?)",
        [created.sendout_id, resent.sendout_id],
    ).fetchall()
    assert stored == [(tracked,), (tracked,)]


def test_a_marketing_send_out_without_email_has_nothing_to_track(con):
    created = sendouts.create(con, draft(channels=["sms"], subject=None, html_body=None), NOW)

    assert con.execute(
        "SELECT is_tracked FROM sendouts WHERE sendout_id = ?", [created.sendout_id]
    ).fetchall() == [(False,)]


def test_chosen_contacts_are_sent_to_once_each(con):
    created = sendouts.create(con, draft(recipients=Recipients(contact_ids=[2, 1, 2])), NOW)

    assert [m[:2] for m in messages_of(con, created.sendout_id)] == [
        (1, "email"),
        (1, "sms"),
        (2, "email"),
    ]


def test_a_recipients_csv_creates_or_updates_its_contacts(con, tmp_path):
    csv = tmp_path / "people.csv"
    csv.write_text(
        "first_name,last_name,email,mobile\nAda,King,ADA@example.com,\nDi,,di@example.com,\n"
    )

    created = sendouts.create(
        con, draft(channels=["email"], sms_text=None, recipients=Recipients(csv=csv)), NOW
    )

    assert [m[2] for m in messages_of(con, created.sendout_id)] == [
        "ada@example.com",
        "di@example.com",
    ]
    assert con.sql("SELECT last_name FROM contacts WHERE contact_id = 1").fetchall() == [("King",)]


def test_a_recipients_csv_keeps_its_good_rows_and_lists_every_bad_one(con, tmp_path):
    csv = tmp_path / "people.csv"
    csv.write_text("first_name,last_name,email,mobile\nDi,,di@,\nEd,,ed@example.com,\nFay,,,\n")

    created = sendouts.create(
        con, draft(channels=["email"], sms_text=None, recipients=Recipients(csv=csv)), NOW
    )

    assert [m[2] for m in messages_of(con, created.sendout_id)] == ["ed@example.com"]
    assert [(r.row, r.reason) for r in created.rejected] == [
        (2, "'di@' is not a valid email address"),
        (4, "no email and no mobile"),
    ]


def test_a_recipients_csv_with_no_good_row_is_refused_with_its_rows(con, tmp_path):
    csv = tmp_path / "people.csv"
    csv.write_text("first_name,last_name,email,mobile\nDi,,di@,\n")

    with pytest.raises(SendoutError, match=re.escape("line 2: 'di@' is not a valid")):
        sendouts.create(
            con, draft(channels=["email"], sms_text=None, recipients=Recipients(csv=csv)), NOW
        )
    assert con.sql("SELECT count(*) FROM sendouts").fetchall() == [(0,)]


def test_people_of_a_csv_kept_out_of_contacts_are_messaged_but_not_listed(con, tmp_path):
    csv = tmp_path / "guests.csv"
    csv.write_text("first_name,last_name,email,mobile\nGus,,gus@example.com,\n")
    guests = Recipients(csv=csv, csv_to_contacts=False)

    created = sendouts.create(con, draft(channels=["email"], sms_text=None, recipients=guests))
    everyone = sendouts.create(con, draft(channels=["email"], sms_text=None), NOW)

    assert [m[2] for m in messages_of(con, created.sendout_id)] == ["gus@example.com"]
    assert "gus@example.com" not in [m[2] for m in messages_of(con, everyone.sendout_id)]
    assert reports.search_contacts(con, "gus").is_empty()


def test_a_csv_kept_out_of_contacts_leaves_an_existing_contact_as_it_was(con, tmp_path):
    csv = tmp_path / "guests.csv"
    csv.write_text("first_name,last_name,email,mobile\nAnnie,Other,ada@example.com,\n")

    sendouts.create(
        con,
        draft(
            channels=["email"], sms_text=None, recipients=Recipients(csv=csv, csv_to_contacts=False)
        ),
    )

    assert con.sql(
        "SELECT first_name, is_listed FROM contacts WHERE email = 'ada@example.com'"
    ).fetchall() == [("Ada", True)]


def test_typed_addresses_are_sent_to_and_bad_ones_listed(con):
    typed = "zoe@example.org, +44 7911 123999\nnot-an-address"

    created = sendouts.create(con, draft(recipients=Recipients(typed=typed)), NOW)

    assert sorted(m[2] for m in messages_of(con, created.sendout_id)) == [
        "+447911123999",
        "zoe@example.org",
    ]
    assert [r.row for r in created.rejected] == [3]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": "  "}, "name", "give the send-out a name"),
        ({"channels": []}, "channels", "choose email, SMS or both"),
        ({"channels": ["email", "fax"]}, "channels", "'fax' is not a channel"),
        ({"communication_type": "spam"}, "communication_type", "marketing or non_marketing"),
        ({"subject": ""}, "subject", "an email needs a subject"),
        ({"html_body": None, "text_body": " "}, "body", "an email needs a body"),
        ({"channels": ["sms"]}, "body", "email is not a channel"),
        ({"sms_text": "\n"}, "sms_text", "an SMS needs a text"),
        ({"channels": ["email"]}, "sms_text", "SMS is not a channel"),
        ({"subject": "Hi {name}"}, "subject", "an unknown placeholder {name}"),
        ({"text_body": "Hi {first_name:>40}"}, "text_body", "a placeholder with a format"),
        ({"html_body": "<p>{email!r}</p>"}, "html_body", "with a format, {email...}"),
        ({"sms_text": "50% off {today"}, "sms_text", "a stray brace"),
        ({"scheduled_at": NOW - timedelta(minutes=1)}, "scheduled_at", "in the past"),
        ({"scheduled_at": datetime(2030, 1, 1)}, "scheduled_at", "time zone"),
        ({"recipients": Recipients()}, "recipients", "choose the recipients"),
    ],
)
def test_each_bad_field_is_named_with_a_clear_message(con, changes, field, message):
    with pytest.raises(SendoutError) as raised:
        sendouts.create(con, draft(**changes), NOW)

    assert any(e.field == field and message in e.message for e in raised.value.errors)
    assert con.sql("SELECT count(*) FROM sendouts").fetchall() == [(0,)]


def test_every_problem_is_reported_at_once(con):
    errors = sendouts.validate(draft(name="", subject="", sms_text=""), NOW)

    assert [e.field for e in errors] == ["name", "subject", "sms_text"]


def test_an_unknown_contact_is_refused(con):
    with pytest.raises(SendoutError, match="no contact with id 99"):
        sendouts.create(con, draft(recipients=Recipients(contact_ids=[1, 99])), NOW)


def test_placeholders_a_contact_lacks_are_left_empty():
    assert sendouts.render("Hi {first_name}{last_name}!", {"first_name": "Cy"}) == "Hi Cy!"
    assert sendouts.render("Use {{braces}}", {}) == "Use {braces}"


def test_a_scheduled_send_out_can_be_cancelled_once(con):
    created = sendouts.create(con, draft(scheduled_at=NOW + timedelta(hours=2)), NOW)

    sendouts.cancel(con, created.sendout_id, NOW)

    with pytest.raises(SendoutError, match="already cancelled"):
        sendouts.cancel(con, created.sendout_id, NOW)


def test_a_due_send_out_can_be_cancelled_until_its_first_message_is_claimed(con):
    stuck = sendouts.create(con, draft(), NOW).sendout_id  # due, and no dispatch ever ran
    racing = sendouts.create(con, draft(), NOW).sendout_id  # its dispatch has just started
    going = sendouts.create(con, draft(), NOW).sendout_id
    dispatch_state.start(con, racing, "run-1", NOW, lease_seconds=30)
    dispatch_state.start(con, going, "run-2", NOW, lease_seconds=30)
    claimed = dispatch_state.claim_batch(con, going, "run-2", 1, NOW)

    sendouts.cancel(con, stuck, NOW)
    sendouts.cancel(con, racing, NOW)

    assert len(claimed) == 1
    with pytest.raises(SendoutError, match="has started sending"):
        sendouts.cancel(con, going, NOW)
    with pytest.raises(dispatch_state.DispatchError, match="was cancelled"):  # nothing goes
        dispatch_state.claim_batch(con, racing, "run-1", 10, NOW)
    with pytest.raises(dispatch_state.DispatchError, match="was cancelled"):
        dispatch_state.start(con, stuck, "run-3", NOW, lease_seconds=30)
    with pytest.raises(SendoutError, match="there is no send-out nope"):
        sendouts.cancel(con, "nope", NOW)


def test_resend_to_someone_else_copies_the_content_and_links_the_original(con):
    original = sendouts.create(con, draft(recipients=Recipients(contact_ids=[1])), NOW)

    again = resends.resend_to(con, original.sendout_id, Recipients(contact_ids=[2]), NOW)

    [(name, subject, resend_of)] = con.execute(
        "SELECT name, subject, resend_of FROM sendouts WHERE sendout_id = ?", [again.sendout_id]
    ).fetchall()
    assert (name, subject, resend_of) == (
        "November news (resend)",
        "Hello {first_name}",
        original.sendout_id,
    )
    assert [m[2] for m in messages_of(con, again.sendout_id)] == ["bob@example.com"]


def test_resend_to_non_openers_picks_exactly_the_right_people(db_path, tmp_path):
    people = ["opened", "machine", "nothing", "bounced", "unsubscribed", "listed", "clicked"]
    with open_warehouse(db_path) as con:
        for who in people:
            con.execute(
                "INSERT INTO contacts (first_name, email) VALUES (?, ?)",
                [who, f"{who}@example.com"],
            )
        created = sendouts.create(
            con, draft(channels=["email"], sms_text=None), NOW - timedelta(days=1)
        )
        ids = dict(
            con.execute(
                "SELECT recipient, message_id FROM messages WHERE sendout_id = ?",
                [created.sendout_id],
            ).fetchall()
        )

    def mid(who: str) -> str:
        return ids[f"{who}@example.com"]

    ingest_events(
        db_path,
        tmp_path,
        [ses("Delivery", f"{who}@example.com", mid(who)) for who in people]
        + [
            ses("Open", "opened@example.com", mid("opened")),
            ses("Click", "clicked@example.com", mid("clicked")),
            ses("Bounce", "bounced@example.com", mid("bounced"), status="5.1.1"),
            ses("Subscription", "unsubscribed@example.com", mid("unsubscribed")),
            ses("Open", "machine@example.com", mid("machine")),
        ],
    )
    with open_warehouse(db_path) as con:
        con.execute("UPDATE events SET is_machine_open = true WHERE recipient LIKE 'machine@%'")
        unsubscribes.add(con, "email", "listed@example.com", "all", "ana", "asked by phone")
    run_refresh(db_path)

    with open_warehouse(db_path) as con:

        def names(contact_ids: list[int]) -> list[str]:
            query = "SELECT first_name FROM contacts WHERE contact_id IN (SELECT unnest(?))"
            return sorted(name for (name,) in con.execute(query, [contact_ids]).fetchall())

        default = names(resends.non_openers(con, created.sendout_id))
        strict = names(resends.non_openers(con, created.sendout_id, exclude_machine_openers=True))
        again = resends.resend_to_non_openers(con, created.sendout_id, now=NOW)

    assert default == ["machine", "nothing"]
    assert strict == ["nothing"]
    assert again.messages == 2


def test_replies_are_forwarded_only_to_a_real_number_stored_in_e164(con):
    from warehouse.sendouts import Draft, Recipients, create, validate

    draft = Draft(
        name="Reminder",
        channels=["sms"],
        communication_type="non_marketing",
        recipients=Recipients(all_contacts=True, region="GB"),  # numbers written in the UK
        sms_text="See you Tuesday",
        forward_to="not a number",
    )
    assert [e.field for e in validate(draft)] == ["forward_to"]

    con.execute("INSERT INTO contacts (first_name, mobile) VALUES ('Ada', '+447911123456')")
    draft.forward_to = "07911 123457"
    created = create(con, draft)
    stored = con.execute(
        "SELECT forward_to FROM sendouts WHERE sendout_id = ?", [created.sendout_id]
    ).fetchall()
    assert stored == [("+447911123457",)]


def test_a_forward_to_number_stored_as_typed_is_read_in_the_configured_region_on_resend(con):
    """Send-outs made before forward-to numbers were stored in E.164 keep them as typed."""
    from warehouse.settings import WarehouseSettings

    created = sendouts.create(con, draft(channels=["email"], sms_text=None), NOW)
    con.execute("UPDATE sendouts SET forward_to = '07911 123999'")

    again = resends.resend_to_non_openers(
        con, created.sendout_id, now=NOW, config=WarehouseSettings(default_region="GB")
    )

    stored = con.execute("SELECT forward_to FROM sendouts WHERE sendout_id = ?", [again.sendout_id])
    assert stored.fetchall() == [("+447911123999",)]
