"""`ingest_paths`: idempotent by file and by event, never loses bad input, joins our messages."""

import gzip
import json
import shutil
from pathlib import Path

import pytest

from tests.events import sendgrid, ses, write_ndjson
from warehouse.db import open_warehouse
from warehouse.folders import IngestError
from warehouse.ingest import ingest_paths
from warehouse.links import link_events
from warehouse.vocabulary import Provider


def event_rows(query) -> list[tuple]:
    return [
        tuple(row.values())
        for row in query(
            "SELECT provider, event_id, event_type, recipient, occurred_at FROM events ORDER BY ALL"
        )
    ]


def test_ingesting_the_same_folder_twice_changes_nothing(db_path: Path, tmp_path: Path, query):
    folder = tmp_path / "landing"
    folder.mkdir()
    write_ndjson(folder / "a.ndjson", [ses("Delivery"), ses("Open")])
    (folder / "b.json").write_text(
        json.dumps([sendgrid("delivered"), sendgrid("open", event_id="sg-2")])
    )

    first = ingest_paths(db_path, [folder])
    before = event_rows(query)
    second = ingest_paths(db_path, [folder])

    assert (first.files_read, first.events_new) == (2, 4)
    assert (second.files_read, second.files_skipped, second.events_new) == (0, 2, 0)
    assert event_rows(query) == before


def test_a_copy_of_a_file_under_another_name_is_skipped_by_content(db_path, tmp_path, query):
    original = write_ndjson(tmp_path / "one.ndjson", [ses("Delivery")])
    shutil.copy(original, tmp_path / "one-again.ndjson")

    summary = ingest_paths(db_path, [tmp_path / "one.ndjson", tmp_path / "one-again.ndjson"])

    assert (summary.files_read, summary.files_skipped) == (1, 1)


def test_an_event_delivered_in_two_files_is_stored_once(db_path, tmp_path, query):
    write_ndjson(tmp_path / "1.ndjson", [ses("Delivery"), ses("Open")])
    write_ndjson(tmp_path / "2.ndjson", [ses("Open"), ses("Click")])

    summary = ingest_paths(db_path, [tmp_path])

    assert (summary.events_new, summary.events_duplicate) == (3, 1)
    assert sorted(r[2] for r in event_rows(query)) == ["clicked", "delivered", "opened"]


def test_a_duplicate_inside_one_file_is_stored_once(db_path, tmp_path, query):
    path = tmp_path / "sg.json"
    path.write_text(
        json.dumps([sendgrid("open"), sendgrid("open"), sendgrid("click", event_id="sg-2")])
    )

    summary = ingest_paths(db_path, [path])

    assert (summary.events_new, summary.events_duplicate) == (2, 1)


def test_events_arriving_out_of_order_keep_their_own_times(db_path, tmp_path, query):
    write_ndjson(
        tmp_path / "late.ndjson",
        [ses("Open", at="2026-11-02T11:00:00Z"), ses("Delivery", at="2026-11-02T09:00:05Z")],
    )

    ingest_paths(db_path, [tmp_path])

    rows = query("SELECT event_type, occurred_at FROM events ORDER BY occurred_at")
    assert [r["event_type"] for r in rows] == ["delivered", "opened"]


HOSTILE_LINES = {
    "truncated JSON": '{"eventType": "Delivery", "mail": {"messageId":',
    "not an object": '["eventType", "Delivery"]',
    "a bare number": "42",
    "unknown event type": json.dumps(ses("Teleported")),
    "wrong types": json.dumps({"eventType": "Delivery", "mail": "not an object", "delivery": 7}),
    "unparseable timestamp": json.dumps(ses("Open", at="the day after tomorrow")),
    "huge line": json.dumps({**ses("Delivery"), "eventType": "X" * 2_000_000}),
    "no recipient": json.dumps({**ses("Delivery"), "delivery": {"recipients": []}}),
}


@pytest.mark.parametrize("name", HOSTILE_LINES)
def test_a_hostile_line_is_quarantined_and_the_good_lines_still_ingested(
    name, db_path, tmp_path, query
):
    good = json.dumps(ses("Delivery"))
    path = tmp_path / "mixed.ndjson"
    path.write_text(f"{good}\n{HOSTILE_LINES[name]}\n{json.dumps(ses('Open'))}\n")

    summary = ingest_paths(db_path, [path], provider=Provider.SES)

    assert (summary.events_new, summary.quarantined) == (2, 1)
    [kept] = query("SELECT source_file, source_line, reason, raw FROM quarantine")
    assert kept["source_file"] == str(path.resolve())
    assert kept["source_line"] == 2
    assert kept["raw"] == HOSTILE_LINES[name]
    assert kept["reason"]


def test_binary_garbage_is_quarantined_without_stopping_the_run(db_path, tmp_path, query):
    (tmp_path / "a-garbage.ndjson").write_bytes(bytes(range(256)) * 4)
    write_ndjson(tmp_path / "b-good.ndjson", [ses("Delivery")])

    summary = ingest_paths(db_path, [tmp_path])

    assert summary.events_new == 1
    assert summary.quarantined >= 1
    reasons = {r["reason"] for r in query("SELECT reason FROM quarantine")}
    assert reasons <= {
        "not valid UTF-8 text",
        "no provider recognised this file; name one with --provider",
    }


def test_a_truncated_array_is_quarantined_whole_and_the_next_file_still_ingested(
    db_path, tmp_path, query
):
    (tmp_path / "a-cut.json").write_text(json.dumps([sendgrid("open")])[:-5])
    (tmp_path / "b-good.json").write_text(json.dumps([sendgrid("click", event_id="sg-9")]))

    summary = ingest_paths(db_path, [tmp_path], provider=Provider.SENDGRID)

    assert (summary.files_read, summary.events_new, summary.quarantined) == (2, 1, 1)
    [kept] = query("SELECT reason FROM quarantine")
    assert kept["reason"].startswith("malformed JSON document")


def test_array_elements_that_are_not_objects_are_quarantined_one_by_one(db_path, tmp_path, query):
    (tmp_path / "sg.json").write_text(json.dumps([sendgrid("open"), 5, "x", None]))

    summary = ingest_paths(db_path, [tmp_path], provider=Provider.SENDGRID)

    assert (summary.events_new, summary.quarantined) == (1, 3)
    assert [r["source_line"] for r in query("SELECT source_line FROM quarantine ORDER BY 1")] == [
        2,
        3,
        4,
    ]


def test_an_empty_file_is_recorded_as_read_with_nothing_in_it(db_path, tmp_path, query):
    (tmp_path / "empty.json").write_text("")

    summary = ingest_paths(db_path, [tmp_path])

    assert (summary.files_read, summary.events_new, summary.quarantined) == (1, 0, 0)
    assert query("SELECT records FROM ingested_files") == [{"records": 0}]


def test_a_file_no_parser_recognises_is_quarantined_and_can_be_read_again_with_a_provider(
    db_path, tmp_path, query
):
    path = write_ndjson(tmp_path / "mystery.ndjson", [{"hello": "world"}, {"what": "is this"}])

    first = ingest_paths(db_path, [path])
    second = ingest_paths(db_path, [path], provider=Provider.SENDGRID)

    assert (first.quarantined, first.events_new) == (2, 0)
    assert second.files_read == 1  # not skipped: the first attempt recognised no provider
    assert second.quarantined == 2  # SendGrid's parser explains why each one is no event


def test_gzipped_and_form_encoded_files_are_read(db_path, tmp_path, query):
    (tmp_path / "ses.ndjson.gz").write_bytes(gzip.compress(json.dumps(ses("Delivery")).encode()))
    (tmp_path / "twilio.txt").write_text(
        "MessageSid=SM1&MessageStatus=delivered&To=%2B14155552671&AccountSid=AC1\n"
        "SmsSid=SM9&SmsStatus=received&From=%2B447911123456&To=%2B14155550000&Body=STOP&AccountSid=AC1\n"
    )

    summary = ingest_paths(db_path, [tmp_path])

    rows = query(
        "SELECT provider, event_type, recipient, body FROM events ORDER BY provider, event_type"
    )
    assert summary.events_new == 3
    assert rows == [
        {
            "provider": "ses",
            "event_type": "delivered",
            "recipient": "ada@example.com",
            "body": None,
        },
        {
            "provider": "twilio",
            "event_type": "delivered",
            "recipient": "+14155552671",
            "body": None,
        },
        {
            "provider": "twilio",
            "event_type": "received",
            "recipient": "+447911123456",
            "body": "STOP",
        },
    ]


def test_provider_detection_is_per_file(db_path, tmp_path, query):
    write_ndjson(tmp_path / "ses.ndjson", [ses("Delivery")])
    (tmp_path / "sg.json").write_text(json.dumps([sendgrid("delivered")]))

    summary = ingest_paths(db_path, [tmp_path])

    assert {f.provider for f in summary.files} == {"ses", "sendgrid"}
    assert query("SELECT DISTINCT channel FROM events") == [{"channel": "email"}]


def test_a_click_mailgun_says_a_bot_made_is_a_machines(db_path, tmp_path, query):
    def clicked(event_id: str, bot: str) -> dict:
        return {
            "event-data": {
                "id": event_id,
                "timestamp": 1715680900.5,
                "event": "clicked",
                "recipient": "ada@example.com",
                "url": "https://example.org/sale",
                "client-info": {"bot": bot, "client-type": "browser"},
                "user-variables": {"sendout_message_id": "msg-1"},
            }
        }

    write_ndjson(tmp_path / "mailgun.ndjson", [clicked("c1", ""), clicked("c2", "microsoft")])

    ingest_paths(db_path, [tmp_path])

    assert query("SELECT event_id, event_type, is_machine_open FROM events ORDER BY 1") == [
        {"event_id": "c1:2024-05-14", "event_type": "clicked", "is_machine_open": False},
        {"event_id": "c2:2024-05-14", "event_type": "clicked", "is_machine_open": True},
    ]


def test_events_for_unknown_messages_are_kept_and_join_once_the_message_exists(
    db_path, tmp_path, query
):
    write_ndjson(tmp_path / "early.ndjson", [ses("Delivery", message_id="msg-7")])

    summary = ingest_paths(db_path, [tmp_path])
    with open_warehouse(db_path) as con:
        con.execute(
            "INSERT INTO messages (message_id, sendout_id, channel, recipient) "
            "VALUES ('msg-7', 'so-1', 'email', 'ada@example.com')"
        )
        link_events(con)

    assert summary.unmatched == 1
    assert query("SELECT message_id FROM events") == [{"message_id": "msg-7"}]


def test_events_join_our_message_by_the_providers_message_id_when_untagged(
    db_path, tmp_path, query
):
    with open_warehouse(db_path) as con:
        con.execute(
            "INSERT INTO messages (message_id, sendout_id, channel, recipient, "
            "provider_message_id) VALUES ('msg-8', 'so-1', 'email', 'ada@example.com', 'abc123')"
        )
    (tmp_path / "sg.json").write_text(json.dumps([sendgrid("delivered")]))

    summary = ingest_paths(db_path, [tmp_path])

    assert summary.unmatched == 0
    assert query("SELECT message_id FROM events") == [{"message_id": "msg-8"}]


def test_inbound_sms_is_not_counted_as_unmatched(db_path, tmp_path):
    (tmp_path / "in.txt").write_text(
        "SmsSid=SM9&SmsStatus=received&From=%2B447911123456&To=%2B14155550000&Body=Hi&AccountSid=AC1\n"
    )

    assert ingest_paths(db_path, [tmp_path]).unmatched == 0


def test_a_path_that_does_not_exist_is_an_error_before_anything_is_read(db_path, tmp_path):
    write_ndjson(tmp_path / "ok.ndjson", [ses("Delivery")])

    with pytest.raises(IngestError, match="does not exist"):
        ingest_paths(db_path, [tmp_path / "ok.ndjson", tmp_path / "missing.ndjson"])


def test_a_cut_short_gz_keeps_its_complete_lines_and_the_folder_goes_on(db_path, tmp_path, query):
    folder = tmp_path / "landing"
    folder.mkdir()
    lines = [json.dumps(ses("Delivery", f"p{n}@example.com", f"m{n}")) for n in range(2000)]
    packed = gzip.compress(("\n".join(lines) + "\n").encode())
    (folder / "a-cut.ndjson.gz").write_bytes(packed[: len(packed) // 2])  # a copy that stopped
    write_ndjson(folder / "b.ndjson", [ses("Delivery", "after@example.com", "m-after")])

    summary = ingest_paths(db_path, [folder])

    stored = {r["recipient"] for r in query("SELECT recipient FROM events")}
    assert "after@example.com" in stored  # the file after it was read
    assert "p0@example.com" in stored and len(stored) > 100  # what was sound is kept
    [damaged] = [f for f in summary.files if f.damage]
    assert damaged.path.endswith("a-cut.ndjson.gz")
    assert summary.as_dict()["damaged"][0]["damage"].startswith("the compressed file is damaged")
    reasons = [r["reason"] for r in query("SELECT reason FROM quarantine WHERE source_line = 0")]
    assert reasons == [damaged.damage]


def test_a_file_of_blank_lines_is_read_as_empty(db_path, tmp_path):
    (tmp_path / "blank.ndjson").write_text("\n\n\n")

    [result] = ingest_paths(db_path, [tmp_path / "blank.ndjson"]).files

    assert (result.records, result.events_new, result.damage) == (0, 0, None)


@pytest.mark.parametrize(
    "details", ["smtp;550 Message rejected", "This mailbox is disabled (554.30)"]
)
def test_postmarks_own_description_of_a_hard_bounce_proves_no_address_wrong(
    db_path, tmp_path, query, details
):
    """Postmark describes every HardBounce "(ex: unknown user, mailbox not found)": only the
    receiving server's words (Details) may call an address bad, or a good one is listed."""
    record = {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "TypeCode": 1,
        "MessageID": "pm-1",
        "Metadata": {"sendout_message_id": "m1"},
        "Description": "The server was unable to deliver your message (ex: unknown user, "
        "mailbox not found).",
        "Details": details,
        "Email": "ada@example.com",
        "BouncedAt": "2024-05-14T10:01:12Z",
    }

    ingest_paths(db_path, [write_ndjson(tmp_path / "postmark.ndjson", [record])])

    assert query("SELECT event_type, bounce_kind FROM events") == [
        {"event_type": "bounced", "bounce_kind": "hard"}
    ]
