"""Bounce mail ingest speed: messages per second into the warehouse, against the goal (2,000
messages/s) and against a peer measured in the same run: what an analyst would script, Python's
`email` package and flufl.bounce's detectors over the same messages, finding the addresses
only (no warehouse, no classification). Prints one JSON line. Usage:
    python bench/bounces.py [--messages 5000] [--layout maildir|mbox]

The messages are a mix of what a relay sends back: RFC 3464 DSNs from Postfix (5.1.1, 4.2.2
delays, 5.7.1 blocks), Exim's and qmail's plain-text bounces, Gmail's DSN with an HTML part,
and auto-replies, each for a message id of ours; a fifth of them join by recipient and time
alone. They land as a Maildir (one file per message: the way `sendout bounces receive` and
`fetch` land them) or as one mbox file.
"""

import argparse
import json
import random
import tempfile
import time
from email import message_from_bytes
from email.policy import compat32
from pathlib import Path

from warehouse.db import open_warehouse
from warehouse.ingest import ingest_paths

GOAL_PER_SECOND = 2000

DSN = """From: MAILER-DAEMON@mx{n}.example.org (Mail Delivery System)
To: bounces+{id}@bounces.example.com
Subject: Undelivered Mail Returned to Sender
Date: Thu, 3 Dec 2026 10:{minute:02d}:00 +0000
Message-ID: <bounce-{n}@mx{n}.example.org>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B{n}"

--B{n}
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx{n}.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{rcpt}>: host mx.example.net[192.0.2.{octet}] said: {reply} (in reply to RCPT TO command)

--B{n}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx{n}.example.org
Original-Envelope-Id: {id}
Arrival-Date: Thu, 3 Dec 2026 09:59:58 +0000

Final-Recipient: rfc822; {rcpt}
Original-Recipient: rfc822;{rcpt}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; {reply}

--B{n}
Content-Type: text/rfc822-headers

From: News <news@example.com>
To: {rcpt}
Subject: Our spring news
Message-ID: <{id}@example.com>
X-Sendout-Message-Id: {id}

--B{n}--
"""

EXIM = """From: Mail Delivery System <Mailer-Daemon@mail{n}.example.org>
To: bounces+{id}@bounces.example.com
Subject: Mail delivery failed: returning message to sender
Date: Thu, 3 Dec 2026 10:{minute:02d}:00 +0000
Message-ID: <exim-{n}@mail{n}.example.org>

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  {rcpt}
    SMTP error from remote mail server after RCPT TO:<{rcpt}>:
    550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown

------ This is a copy of the message, including all the headers. ------

Message-ID: <{id}@example.com>
From: News <news@example.com>
To: {rcpt}
"""

QMAIL = """From: MAILER-DAEMON@qmail{n}.example.org
To: news@example.com
Subject: failure notice
Date: Thu, 3 Dec 2026 10:{minute:02d}:00 +0000

Hi. This is the qmail-send program at qmail{n}.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{rcpt}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

From: news@example.com
To: {rcpt}
"""

AUTO_REPLY = """From: {rcpt}
To: news@example.com
Subject: Out of office: Our spring news
Date: Thu, 3 Dec 2026 10:{minute:02d}:00 +0000
Auto-Submitted: auto-replied

I am away until Monday and will read your message when I am back.
"""

REPLIES = [
    ("failed", "5.1.1", "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown"),
    ("delayed", "4.2.2", "452 4.2.2 <{rcpt}>: Mailbox full"),
    ("failed", "5.7.1", "554 5.7.1 Service unavailable; client blocked using zen.spamhaus.org"),
]


def message(n: int, rng: random.Random) -> bytes:
    fields = {
        "n": n,
        "id": f"msg_{rng.getrandbits(128):032x}",
        "rcpt": f"person{n}@example.net",
        "minute": n % 60,
        "octet": n % 250 + 1,
    }
    kind = rng.random()
    if kind < 0.6:
        action, status, reply = rng.choice(REPLIES)
        text = DSN.format(**fields, action=action, status=status, reply=reply.format(**fields))
    elif kind < 0.8:
        text = EXIM.format(**fields)
    elif kind < 0.95:
        text = QMAIL.format(**fields)
    else:
        text = AUTO_REPLY.format(**fields)
    return text.replace("\n", "\r\n").encode()


def write_corpus(folder: Path, messages: list[bytes], layout: str) -> Path:
    if layout == "mbox":
        path = folder / "bounces.mbox"
        with path.open("wb") as handle:
            for raw in messages:
                handle.write(b"From MAILER-DAEMON Thu Dec  3 10:00:00 2026\n")
                handle.write(raw.replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From "))
                handle.write(b"\n")
        return path
    root = folder / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (root / sub).mkdir(parents=True)
    for n, raw in enumerate(messages):
        (root / "new" / f"1764756000.M{n}P1.bench").write_bytes(raw)
    return root


def peer_seconds(messages: list[bytes]) -> float:
    """Parse each message and find its failed addresses with flufl.bounce's detectors."""
    from flufl.bounce import all_failures

    started = time.perf_counter()
    for raw in messages:
        all_failures(message_from_bytes(raw, policy=compat32))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--layout", choices=["maildir", "mbox"], default="maildir")
    args = parser.parse_args()
    rng = random.Random(7)
    messages = [message(n, rng) for n in range(args.messages)]
    with tempfile.TemporaryDirectory() as folder:
        corpus = write_corpus(Path(folder), messages, args.layout)
        db = Path(folder) / "bench.duckdb"
        with open_warehouse(db):
            pass
        started = time.perf_counter()
        summary = ingest_paths(db, [corpus])
        seconds = time.perf_counter() - started
    peer = peer_seconds(messages)
    rate = args.messages / seconds
    print(
        json.dumps(
            {
                "bench": "bounce_mail_ingest",
                "layout": args.layout,
                "messages": args.messages,
                "seconds": round(seconds, 3),
                "messages_per_s": round(rate),
                "vs_goal_2000_per_s": round(rate / GOAL_PER_SECOND, 2),
                "peer_flufl_messages_per_s": round(args.messages / peer),
                "vs_peer": round(peer / seconds, 2),
                "events_new": summary.events_new,
                "quarantined": summary.quarantined,
            }
        )
    )


if __name__ == "__main__":
    main()
