"""The one classifier (warehouse/parsers/classify.sql): the evidence of a failed delivery as
each reporter gives it, and the event, bounce kind and reason it makes. A good address called
bad is the worst error it can make, so every row that is not `bad_email` is a promise too."""

import duckdb
import pytest

from warehouse.parsers import install_macros


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    install_macros(con)
    yield con
    con.close()


def classify(con, verdict, code, reply, text, hint=None) -> tuple:
    judged = con.execute(
        "SELECT classify_failure(?, ?, ?, ?, ?)", [verdict, code, reply, text, hint]
    ).fetchall()[0][0]
    return judged["event_type"], judged["bounce_kind"], judged["bounce_reason"]


# verdict | enhanced code | reply | diagnostic text | provider's classification
#     -> event, bounce kind, reason ("-" is none)
EXAMPLES = """
# the code proves a wrong address
failed |5.1.1 |550| 550 5.1.1 User unknown |- -> bad_email hard user_unknown
failed |5.1.10|556| Recipient address has null MX |- -> bad_email hard domain_unknown
# the provider says so, and no precise code says otherwise
failed |5.0.0 |500| 500 unknown recipient |sendgrid:Invalid Address -> bad_email hard user_unknown
failed |-     |-  | Requested action not taken |ses:NoEmail -> bad_email hard user_unknown
# a remote server's words, under no code or one that says nothing
failed |-     |550| 550 No such user here |- -> bad_email hard user_unknown
failed |5.0.0 |550| 550 user unknown |- -> bad_email hard user_unknown
# ... but never against a precise code, and never with a word of policy
failed |5.7.1 |550| 550 5.7.1 user unknown or blocked |- -> bounced soft policy
failed |-     |550| 550 unknown user, rejected as spam |- -> bounced soft policy
# the message, not the address, was refused: soft, so nobody is listed
failed |5.7.26|550| 550-5.7.26 Unauthenticated (DMARC) |- -> bounced soft authentication
failed |5.2.2 |552| 552 5.2.2 Mailbox full |- -> bounced soft mailbox_full
# a full mailbox exists, whatever the code says (Orange, and a German server)
failed |5.1.1 |552| 552 5.1.1 Boite du destinataire pleine |- -> bounced soft mailbox_full
failed |5.1.1 |550| 550 5.1.1 Postfach voll |- -> bounced soft mailbox_full
failed |5.3.4 |552| 552 5.3.4 Message too big |- -> bounced soft too_big
# about the recipient, yet no proof: Microsoft 365's directory block, a vanished domain
failed |5.4.1 |550| 5.4.1 Recipient address rejected: Access denied |- -> bounced hard user_unknown
failed |5.4.4 |550| Host or domain name not found |- -> bounced hard domain_unknown
failed |5.2.1 |550| 550 5.2.1 The account is disabled |- -> bounced hard mailbox_disabled
failed |-     |-  | - |- -> bounced soft other
# a refusal of our own sender (return) address says nothing of the recipient's
failed |5.1.0 |550| <b+m@x.org>: Sender address rejected: User unknown |- -> bounced soft policy
failed |5.1.1 |550| 5.1.1 <bounces@ours.org>: Sender address rejected |- -> bounced soft policy
failed |-     |550| Verification failed for <bounces@ours.org> |- -> bounced soft policy
# a number in the text is no reply code; "not recognized" of a command is no unknown user
-      |-     |-  | Mailbox quota exceeded: 250 MB used |- -> bounced soft mailbox_full
failed |5.5.0 |500| 500 5.5.0 Command not recognized |- -> bounced soft network
failed |-     |550| 550 greylisted, user unknown, try again later |- -> bounced soft network
# a name server that did not answer says nothing of the domain; a domain or address that
# merely contains "later" or "temporary" says nothing of time
delayed|4.4.3 |451| 451 4.4.3 Temporary DNS lookup failure for example.org |- -> deferred - network
failed |-     |550| NXDOMAIN Domain name not found: plater.fr |- -> bounced hard domain_unknown
failed |-     |550| 550 nxdomain for contemporary-art.example |- -> bounced hard domain_unknown
# still trying, and given up after trying
delayed|4.0.0 |421| 421 4.0.0 try again later |- -> deferred - network
-      |4.2.2 |452| 452 4.2.2 Mailbox full |- -> deferred - mailbox_full
failed |4.4.7 |-  | delivery time expired |- -> bounced soft expired
gave_up|-     |-  | Too many hops 26 (25 max) |- -> bounced soft network
# a report of success
delivered|2.0.0 |250| 250 2.0.0 Ok |- -> delivered - -
"""


def examples() -> list[tuple]:
    rows = []
    for line in EXAMPLES.strip().splitlines():
        if line.startswith("#"):
            continue
        evidence, _, expected = line.partition("->")
        values = [None if v.strip() == "-" else v.strip() for v in evidence.split("|")]
        outcome = tuple(None if v == "-" else v for v in expected.split())
        rows.append(pytest.param(*values, outcome, id=line.split("|")[3].strip()[:40]))
    return rows


@pytest.mark.parametrize(("verdict", "code", "reply", "text", "hint", "expected"), examples())
def test_the_evidence_decides_the_event_kind_and_reason(
    con, verdict, code, reply, text, hint, expected
):
    assert classify(con, verdict, code, reply, text, hint) == expected


@pytest.mark.parametrize(
    ("error_code", "expected"),
    [
        ("30005", ("bad_number", "user_unknown")),
        ("21211", ("bad_number", "user_unknown")),
        ("30003", ("deferred", "network")),
        ("30007", ("failed", "policy")),
        ("21610", ("skipped", "policy")),
        ("30008", ("failed", "other")),
    ],
)
def test_twilio_error_codes_decide_an_sms_failure(con, error_code, expected):
    judged = con.execute("SELECT classify_sms_failure(?)", [error_code]).fetchall()[0][0]
    assert (judged["event_type"], judged["bounce_reason"]) == expected
