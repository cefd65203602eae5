"""`sendout demo`: a demo workspace that shows everything Sendout does, built reproducibly from a
seed with the sandbox provider: about 2,000 contacts (a few with invalid addresses, reported at
import), a marketing newsletter and a non-marketing reminder sent days ago, an SMS with replies
(STOP and a wrong word among them), a send-out scheduled a few minutes ahead, and an admin
user with a new random password, so the dashboard asks for a login from the start.
"""

import csv
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flows.dispatch import run_dispatch
from flows.senders.sandbox import SandboxEmail, SandboxSms
from flows.settings import Settings
from warehouse import sendouts, users
from warehouse.contact_rows import REQUIRED_COLUMNS
from warehouse.contacts import import_contacts
from warehouse.db import open_warehouse
from warehouse.ingest import ingest_paths
from warehouse.refresh import refresh
from warehouse.sendouts import Draft, Recipients
from warehouse.vocabulary import Channel, CommunicationType

FIRST = [
    "Ada",
    "Amira",
    "Ben",
    "Chloe",
    "Dev",
    "Ella",
    "Femi",
    "Grace",
    "Hugo",
    "Isla",
    "Jack",
    "Kai",
    "Lena",
    "Li",
    "Maya",
    "Noah",
    "Olu",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tom",
    "Uma",
    "Vik",
    "Wren",
    "Yusuf",
    "Zoe",
]
LAST = [
    "Adams",
    "Begum",
    "Chen",
    "Davies",
    "Evans",
    "Fischer",
    "Garcia",
    "Hughes",
    "Iqbal",
    "Jones",
    "Khan",
    "Lewis",
    "Martin",
    "Nowak",
    "Okafor",
    "Patel",
    "Quinn",
    "Roberts",
    "Singh",
    "Taylor",
    "Usman",
    "Walker",
    "Young",
]
DOMAINS = ["example.org", "example.com", "example.net"]
DEMO_ADMIN = "demo-admin"
NEWSLETTER = """<h1>News from the study, {first_name}</h1>
<p>Thank you for taking part. This month: what we learnt from the spring visits, and the dates
of the summer sessions.</p><p><a href="https://example.org/news">Read more</a></p>"""


@dataclass(frozen=True)
class DemoWorkspace:
    contacts: int
    rejected_rows: int
    sendouts: dict[str, str]  # what each is -> its id
    admin_name: str
    admin_password: str  # said once, never stored in clear


def _contacts_csv(path: Path, count: int, rng: random.Random) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REQUIRED_COLUMNS)
        for n in range(count):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            email = f"{first}.{last}{n}@{DOMAINS[n % 3]}".lower()
            mobile = f"07911 {100000 + n:06d}" if rng.random() < 0.6 else ""
            if n % 400 == 7:
                email = f"{first}.{last}@"  # a typo the import reports
            if n % 500 == 11:
                mobile = "07700 900123"  # not a real mobile number
            writer.writerow([first, last, email, mobile])


def _send(db: Path, config: Settings, draft: Draft, at: datetime) -> str:
    with open_warehouse(db) as con:
        sendout_id = sendouts.create(con, draft, now=at, config=config).sendout_id
    clock = lambda: at + timedelta(seconds=30)  # noqa: E731  (sent in the past)
    senders = {"email": SandboxEmail(config, now=clock), "sms": SandboxSms(config, now=clock)}
    run_dispatch(db, sendout_id, config, senders=senders)
    # what the providers reported comes in before the next send-out, so its list is current
    ingest_paths(db, [config.landing])
    with open_warehouse(db) as con:
        refresh(con, config=config)
    return sendout_id


def build_demo(db: Path, landing: Path, contacts: int = 2000, seed: int = 7) -> DemoWorkspace:
    """Build the demo workspace in `db`, its provider files in `landing`."""
    rng = random.Random(seed)
    config = Settings(db=db, landing=landing, sandbox_seed=seed, batch_size=500)
    landing.mkdir(parents=True, exist_ok=True)
    people = landing.parent / "demo-contacts.csv"
    _contacts_csv(people, contacts, rng)
    imported = import_contacts(db, people, "GB")
    now = datetime.now(UTC)
    everyone = Recipients(all_contacts=True)
    ids = {
        "newsletter": _send(
            db,
            config,
            Draft(
                name="November newsletter",
                channels=[Channel.EMAIL],
                communication_type=CommunicationType.MARKETING,
                recipients=everyone,
                subject="News from the study, {first_name}",
                html_body=NEWSLETTER,
                text_body="News from the study: https://example.org/news",
                sender="The Study Team <news@example.org>",
            ),
            now - timedelta(days=6),
        ),
        "reminder": _send(
            db,
            config,
            Draft(
                name="Visit reminder",
                channels=[Channel.EMAIL],
                communication_type=CommunicationType.NON_MARKETING,
                recipients=everyone,
                subject="Your visit next week",
                text_body="Dear {first_name}, a reminder of your visit next Tuesday at 10:00.",
                sender="The Study Team <visits@example.org>",
            ),
            now - timedelta(days=2),
        ),
        "sms": _send(
            db,
            config,
            Draft(
                name="Visit reminder by SMS",
                channels=[Channel.SMS],
                communication_type=CommunicationType.NON_MARKETING,
                recipients=everyone,
                sms_text="Hi {first_name}, see you Tuesday 10:00 at the study "
                "centre. Reply STOP to opt out.",
                auto_reply_text="Thanks, we got your message.",
                forward_to="+447911123999",  # the study team's phone
            ),
            now - timedelta(days=1),
        ),
    }
    with open_warehouse(db) as con:
        ids["scheduled"] = sendouts.create(
            con,
            Draft(
                name="December newsletter",
                channels=[Channel.EMAIL, Channel.SMS],
                communication_type=CommunicationType.MARKETING,
                recipients=everyone,
                subject="December news, {first_name}",
                text_body="What is new this month.",
                sms_text="December news: https://example.org/news",
                scheduled_at=now + timedelta(minutes=3),
            ),
            now,
            config=config,
        ).sendout_id
    password = secrets.token_urlsafe(12)
    with open_warehouse(db) as con:
        refresh(con, config=config)
        users.add(con, DEMO_ADMIN, users.Role.ADMIN, password)
    return DemoWorkspace(imported.created, len(imported.rejected), ids, DEMO_ADMIN, password)
