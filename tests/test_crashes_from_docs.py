"""Crash tests written from the documentation alone (README, docs/ingest.md, docs/webhooks.md,
docs/dispatch.md, docs/operations.md, docs/warehouse.md, DESIGN §8-§9), with real `sendout`
processes on real DuckDB files and 127.0.0.1 only:

- the webhook service killed with kill -9 at random moments while clients post signed events:
  every event answered 2xx is in the warehouse exactly once after a restart and an ingest;
- the whole live path (webhook service + continuous ingester) with both killed at random
  moments: each event once, and statuses and figures equal to those of `refresh --full`;
- a landing file a crash left open with a torn last line: the rest lands, the line is quarantined;
- `sendout refresh` (full and incremental) killed at random moments, snapshot included;
- `sendout ingest` of a file of several parts killed mid-way, twice, then run again;
- `sendout dispatch` killed with kill -9 twice in a row (SMTP relay with PIPELINING and Twilio),
  and once through the built-in sandbox;
- `sendout dispatch` stopped with Ctrl-C and SIGTERM at random moments;
- and a reader polling like the dashboard throughout, whose reads never fail.

Kill moments are random: each test prints its seed (`CRASH_SEED=...`); set the environment
variable CRASH_SEED to replay one.
"""

import collections
import contextlib
import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from tests.smtp_sink import free_port, start_sink
from tests.twilio_fake import ACCOUNT, TOKEN, start_twilio
from tests.warehouse_builders import add_people, create_sendout
from warehouse.db import connect

SENDOUT = Path(sys.executable).parent / "sendout"
REPO = Path(__file__).resolve().parent.parent
PM_USER, PM_PASSWORD = "pm", "pm-pass"


# ---------------------------------------------------------------------------------------------
# processes


@pytest.fixture
def rng(request) -> random.Random:
    """A seeded random source for kill moments; the seed is printed (shown on failure)."""
    seed = int(os.environ.get("CRASH_SEED") or random.SystemRandom().randrange(1_000_000))
    print(f"\n{request.node.name}: CRASH_SEED={seed}")
    return random.Random(seed)


class Processes:
    """`sendout` processes of one test, each in its own process group, logged under logs/;
    whatever is still running at the end of the test is killed."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.logs = tmp_path / "logs"
        self.logs.mkdir(exist_ok=True)
        self.started: list[subprocess.Popen] = []
        self.count = 0

    def start(self, name: str, args: list[str], env: dict, capture: bool = False):
        self.count += 1
        log = self.logs / f"{self.count:02d}-{name}.log"
        process = subprocess.Popen(
            [str(SENDOUT), *args],
            env=env,
            cwd=self.tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else log.open("ab"),
            stderr=log.open("ab"),
            start_new_session=True,
        )
        process.log = log
        self.started.append(process)
        return process

    def python(self, name: str, code: str, *args: str) -> subprocess.Popen:
        self.count += 1
        log = self.logs / f"{self.count:02d}-{name}.log"
        process = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process.log = log
        self.started.append(process)
        return process

    @staticmethod
    def kill9(process: subprocess.Popen) -> None:
        """kill -9 of the process (and anything it started): no shutdown at all."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    @staticmethod
    def signal(process: subprocess.Popen, number: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, number)

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                self.kill9(process)


@pytest.fixture
def processes(tmp_path: Path):
    started = Processes(tmp_path)
    yield started
    started.stop_all()


def tail(process: subprocess.Popen, chars: int = 3000) -> str:
    return process.log.read_text(errors="replace")[-chars:]


def env_for(tmp_path: Path, db: Path, **settings) -> dict[str, str]:
    """The environment of a process of this test: its own warehouse, landing folder and
    settings (as SENDOUT_* variables), nothing inherited from the machine's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDOUT_")}
    env["SENDOUT_DB"] = str(db)
    env["SENDOUT_LANDING"] = str(tmp_path / "landing")
    env["SENDOUT_SANDBOX_SEED"] = "7"
    env.update({f"SENDOUT_{name.upper()}": str(value) for name, value in settings.items()})
    return env


def run(args: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(SENDOUT), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"sendout {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done


def wait_until(condition, timeout: float, what: str, process=None, pause: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"{what}: the process ended ({process.returncode})\n{tail(process)}"
            )
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(pause)


# ---------------------------------------------------------------------------------------------
# a reader polling like the dashboard: short read-only connections, every 0.2 s

READER = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from warehouse.db import connect
db, done, out = Path(sys.argv[1]), Path(sys.argv[2]), open(sys.argv[3], "a")
while not done.exists():
    started = time.monotonic()
    try:
        with connect(db, read_only=True) as con:
            events = con.sql("SELECT count(*) FROM events").fetchall()[0][0]
            figures = con.sql("SELECT sum(done) FROM sendout_channel_stats").fetchall()[0][0]
        record = {"ok": True, "events": events}
    except Exception as error:
        record = {"ok": False, "error": f"{type(error).__name__}: {error}"[:400]}
    record["at"] = round(started, 3)
    record["wait"] = round(time.monotonic() - started, 3)
    out.write(json.dumps(record) + "\n")
    out.flush()
    time.sleep(0.2)
"""


class Reader:
    """A dashboard-like reader in a process of its own; `stop()` returns what each read did."""

    def __init__(self, processes: Processes, db: Path):
        folder = processes.tmp_path
        self.done = folder / "reader.done"
        self.out = folder / "reader.jsonl"
        self.process = processes.python(
            "reader", READER, str(db), str(self.done), str(self.out), str(REPO)
        )

    def reads(self) -> list[dict]:
        """The reads so far (whole lines only)."""
        if not self.out.exists():
            return []
        text = self.out.read_text()
        return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]

    def stop(self) -> list[dict]:
        self.done.touch()
        self.process.wait(timeout=60)
        return self.reads()


def assert_reads_never_failed(reads: list[dict], at_least: int = 3) -> None:
    """DESIGN §9: a dashboard read during a running ingest (or any writer) never fails; a
    read waits its turn, within the 30 s that opening the warehouse retries (docs/ingest.md)."""
    failed = [r for r in reads if not r["ok"]]
    assert len(reads) >= at_least, reads
    assert not failed, f"{len(failed)} of {len(reads)} reads failed, first: {failed[:3]}"
    assert max(r["wait"] for r in reads) < 30, max(r["wait"] for r in reads)


# ---------------------------------------------------------------------------------------------
# warehouses and what they hold


def build_warehouse(db: Path, people: int, **sendout) -> list[tuple[str, str]]:
    """`people` contacts and a send-out by email to all of them (not dispatched); returns its
    messages as (message_id, recipient)."""
    add_people(db, people)
    create_sendout(db, communication_type="non_marketing", **sendout)
    with connect(db, read_only=True) as con:
        return con.sql("SELECT message_id, recipient FROM messages ORDER BY ALL").fetchall()


KINDS = ("Delivery", "Open", "Click")


def postmark_record(n: int, messages: list[tuple[str, str]], prefix: str = "pm-") -> dict:
    """Postmark's webhook record number `n`: for messages[n % len], a delivery, an open or a
    click (by n // len), with a MessageID of its own so that every record is another event."""
    message_id, recipient = messages[n % len(messages)]
    kind = KINDS[(n // len(messages)) % len(KINDS)]
    record = {
        "RecordType": kind,
        "MessageID": f"{prefix}{n}",
        "Recipient": recipient,
        "Metadata": {"sendout_message_id": message_id},
    }
    if kind == "Delivery":
        record["DeliveredAt"] = "2026-01-01T00:00:00Z"
    elif kind == "Open":
        record.update(ReceivedAt="2026-01-01T00:01:00Z", FirstOpen=True)
    else:
        record.update(
            ReceivedAt="2026-01-01T00:02:00Z",
            OriginalLink="https://example.org/",
            ClickLocation="HTML",
        )
    return record


def write_postmark_file(
    path: Path, records: int, messages, broken_every: int = 0, prefix: str = "pm-"
) -> int:
    """A JSON-lines file of Postmark records (every `broken_every`th line broken JSON);
    returns how many lines are broken."""
    broken = 0
    with path.open("w") as out:
        for n in range(records):
            if broken_every and n % broken_every == broken_every - 1:
                out.write('{"RecordType": "Delivery", "MessageID": "cut-short\n')
                broken += 1
            else:
                record = postmark_record(n, messages, prefix)
                out.write(json.dumps(record, separators=(",", ":")) + "\n")
    return broken


def query(db: Path, sql: str) -> list[tuple]:
    with connect(db, read_only=True) as con:
        return con.sql(sql).fetchall()


def figures(db: Path) -> dict[str, list[tuple]]:
    """What a refresh computes, without the time it ran."""
    return {
        "message_status": query(
            db, "SELECT * EXCLUDE (refreshed_at) FROM message_status ORDER BY ALL"
        ),
        "sendout_channel_stats": query(db, "SELECT * FROM sendout_channel_stats ORDER BY ALL"),
        "unsubscribes": query(db, "SELECT channel, address, scope FROM unsubscribes ORDER BY ALL"),
    }


def copy_warehouse(source: Path, target: Path) -> Path:
    """A copy of a warehouse no process has open (with its write-ahead log, if any)."""
    shutil.copyfile(source, target)
    wal = Path(f"{source}.wal")
    if wal.exists():
        shutil.copyfile(wal, f"{target}.wal")
    return target


# ---------------------------------------------------------------------------------------------
# the webhook service


class Webhooks:
    """`sendout webhooks` on a fixed port (kept across restarts, as providers keep the URL)."""

    def __init__(self, processes: Processes, env: dict, port: int):
        self.processes, self.env, self.port = processes, env, port
        self.url = f"http://127.0.0.1:{port}"
        self.process = None

    def start(self) -> "Webhooks":
        self.process = self.processes.start(
            "webhooks", ["webhooks", "--port", str(self.port)], self.env
        )
        wait_until(self._healthy, 60, "the webhook service starting", self.process, pause=0.05)
        return self

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def kill9(self) -> None:
        Processes.kill9(self.process)

    def stop(self) -> None:
        """Ctrl-C: the service hands its open files over."""
        Processes.signal(self.process, signal.SIGTERM)
        self.process.wait(timeout=30)  # uvicorn ends as the signal says (-15)
        assert "Application shutdown complete" in tail(self.process), tail(self.process)


MG_KEY = "mg-key"


def postmark_request(n: int, messages) -> tuple[str, dict]:
    return "postmark", {"json": postmark_record(n, messages), "auth": (PM_USER, PM_PASSWORD)}


def mailgun_request(n: int, messages) -> tuple[str, dict]:
    """Mailgun's webhook for delivery `mg-n`, signed anew with a fresh token at every attempt
    (as Mailgun signs each retry; docs/webhooks.md)."""
    message_id, recipient = messages[n % len(messages)]
    stamp = str(int(time.time()))
    token = os.urandom(16).hex()
    signature = hmac.new(MG_KEY.encode(), f"{stamp}{token}".encode(), hashlib.sha256).hexdigest()
    body = {
        "signature": {"timestamp": stamp, "token": token, "signature": signature},
        "event-data": {
            "id": f"mg-{n}",
            "event": "delivered",
            "timestamp": time.time(),
            "recipient": recipient,
            "user-variables": {"sendout_message_id": message_id},
            "message": {"headers": {"message-id": f"mg-{n}@mg.example.org"}},
        },
    }
    return "mailgun", {"json": body}


class Posters:
    """Clients posting to the service as providers do: a record is sent again (after a short
    pause) until it is answered 2xx; `answered` holds each answered record's last request."""

    def __init__(self, url: str, messages, clients: int = 4, make=postmark_request):
        self.url, self.messages, self.make = url, messages, make
        self.answered: dict[int, dict] = {}
        self.refused: list[tuple[int, int, str]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.numbers = iter(range(10**9))
        self.threads = [threading.Thread(target=self._post, daemon=True) for _ in range(clients)]
        for thread in self.threads:
            thread.start()

    def _next(self) -> int:
        with self.lock:
            return next(self.numbers)

    def _post(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stopping.is_set():
                n = self._next()
                while True:
                    source, request = self.make(n, self.messages)
                    try:
                        answer = client.post(f"{self.url}/webhooks/{source}", **request)
                    except httpx.TransportError:
                        time.sleep(0.05)
                        continue
                    if 200 <= answer.status_code < 300:
                        with self.lock:
                            self.answered[n] = request
                        break
                    if answer.status_code < 500:
                        with self.lock:
                            self.refused.append((n, answer.status_code, answer.text[:200]))
                        break
                    time.sleep(0.05)  # 5xx: retried later, as providers do

    def count(self) -> int:
        with self.lock:
            return len(self.answered)

    def finish(self) -> dict[int, dict]:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a client could not get its last record answered"
        return self.answered


def stored_mailgun_ids(db: Path) -> collections.Counter:
    """How many times each Mailgun delivery (by its event-data id) is stored as an event."""
    rows = query(db, "SELECT split_part(event_id, ':', 1) FROM events WHERE provider = 'mailgun'")
    return collections.Counter(row[0] for row in rows)


def stored_postmark_ids(db: Path) -> collections.Counter:
    """How many times each Postmark record (by its MessageID) is stored as an event."""
    rows = query(
        db,
        "SELECT json_extract_string(payload, '$.MessageID') FROM events "
        "WHERE provider = 'postmark'",
    )
    return collections.Counter(row[0] for row in rows)


def webhook_settings() -> dict:
    return {
        "postmark_user": PM_USER,
        "postmark_password": PM_PASSWORD,
        "mailgun_signing_key": MG_KEY,
    }


# ---------------------------------------------------------------------------------------------
# webhooks: kill -9 while clients post


def test_every_event_answered_2xx_is_stored_once_after_webhook_kill_9s(tmp_path, processes, rng):
    """docs/webhooks.md: an accepted request is appended and fsynced before the 2xx answer;
    files a crash left open are handed over when the service starts again; ingest stores an
    event once by its id; Mailgun's used tokens are on disk before the answer, so a replay is
    refused across restarts and kill -9. Clients post Postmark and Mailgun events while the
    service is killed at random moments (and once stopped with SIGTERM)."""
    db = tmp_path / "warehouse.duckdb"
    messages = build_warehouse(db, 50)
    env = env_for(tmp_path, db, **webhook_settings())
    service = Webhooks(processes, env, free_port()).start()
    postmark = Posters(service.url, messages, clients=3)
    mailgun = Posters(service.url, messages, clients=2, make=mailgun_request)

    interruptions = ["kill -9", "kill -9", "kill -9", "SIGTERM"]
    rng.shuffle(interruptions)
    moments = []
    for how in interruptions:
        delay = rng.uniform(0.1, 1.2)
        time.sleep(delay)
        moments.append((how, round(delay, 3), postmark.count(), mailgun.count()))
        if how == "SIGTERM":
            service.stop()
        else:
            service.kill9()
        service.start()
    time.sleep(0.3)
    answered, answered_mailgun = postmark.finish(), mailgun.finish()
    with httpx.Client(timeout=10) as client:  # replays of answered requests, a sample
        sample = rng.sample(sorted(answered_mailgun), min(100, len(answered_mailgun)))
        replays = [
            client.post(f"{service.url}/webhooks/mailgun", **answered_mailgun[n]).status_code
            for n in sample
        ]
    service.stop()
    print("interruptions (how, after s, postmark answered, mailgun answered):", moments)

    left_open = list((tmp_path / "landing" / "webhooks").glob("*.open"))
    summary = json.loads(run(["ingest", "--json", str(tmp_path / "landing")], env).stdout)
    stored, stored_mailgun = stored_postmark_ids(db), stored_mailgun_ids(db)

    assert not postmark.refused and not mailgun.refused, (postmark.refused, mailgun.refused)
    assert len(answered) > 50 and moments[-1][2] > moments[0][2]
    assert not left_open  # the last service handed every file over when it stopped
    assert not [mid for mid, times in stored.items() if times > 1]
    assert {r["json"]["MessageID"] for r in answered.values()} <= set(stored), "answered, lost"
    # a request in flight at a kill, sent again by its client, is the same event
    assert set(stored) <= {f"pm-{n}" for n in range(max(answered) + 1)}
    assert not [mid for mid, times in stored_mailgun.items() if times > 1]
    assert {f"mg-{n}" for n in answered_mailgun} <= set(stored_mailgun), "answered, lost"
    refused = collections.Counter(replays)
    assert set(refused) <= {401, 403}, f"replayed tokens accepted after restarts: {refused}"
    assert summary["quarantined"] <= len(interruptions)  # at most a torn last line per crash
    assert query(db, "SELECT count(*) - count(DISTINCT (provider, event_id)) FROM events") == [(0,)]


# ---------------------------------------------------------------------------------------------
# the live path: webhook service and continuous ingester, both killed at random moments


def landed_files(landing: Path) -> set[str]:
    return {str(path.resolve()) for path in (landing / "webhooks").glob("*.ndjson")}


def caught_up(db: Path, landing: Path) -> bool:
    """Every handed-over landing file ingested, and every stored event folded by a refresh."""
    read = {row[0] for row in query(db, "SELECT path FROM ingested_files")}
    [(folded, stored)] = query(
        db, "SELECT (SELECT max(folded_seq) FROM refresh_state), (SELECT max(seq) FROM events)"
    )
    return landed_files(landing) <= read and stored is not None and folded == stored


def test_the_live_path_killed_at_random_moments_loses_and_doubles_nothing(tmp_path, processes, rng):
    """docs/operations.md: the continuous ingester loses nothing and counts nothing twice when
    killed at any moment (refresh takes in exactly what is new); docs/webhooks.md: the service
    hands over what a kill -9 left open. Both are killed while pushes arrive and files copied
    in by hand appear; a reader reads all along; at the end every answered event is stored
    once, and statuses and figures equal those of a fresh `refresh --full`."""
    db = tmp_path / "warehouse.duckdb"
    landing = tmp_path / "landing"
    messages = build_warehouse(db, 300)
    env = env_for(
        tmp_path,
        db,
        snapshot_seconds=1,
        landing_file_quiet_seconds=0.25,
        landing_file_max_seconds=0.5,
        **webhook_settings(),
    )
    service = Webhooks(processes, env, free_port()).start()
    ingester = processes.start("ingester", ["ingester", "--poll", "0.2"], env)
    reader = Reader(processes, db)
    posters = Posters(service.url, messages, clients=3)

    plan = ["webhooks", "ingester", "ingester", "webhooks", "ingester", "ingester"]
    rng.shuffle(plan)
    moments, by_hand = [], 0
    for victim in plan:
        # a file copied in by hand (a backfill): the ingester has more to chew on
        records = rng.randrange(2_000, 12_000)
        part = landing / f"backfill-{by_hand}.ndjson"
        write_postmark_file(part.with_suffix(".tmp"), records, messages, prefix=f"bf{by_hand}-")
        part.with_suffix(".tmp").rename(part)
        by_hand += 1
        delay = rng.uniform(0.3, 2.5)
        moments.append((victim, round(delay, 3)))
        time.sleep(delay)
        if victim == "webhooks":
            service.kill9()
            service.start()
        else:
            assert ingester.poll() is None, tail(ingester)
            Processes.kill9(ingester)
            ingester = processes.start("ingester", ["ingester", "--poll", "0.2"], env)
    print("kills (victim, after s):", moments)
    answered = posters.finish()
    service.stop()
    wait_until(lambda: caught_up(db, landing), 120, "the ingester catching up", ingester, 0.3)
    Processes.signal(ingester, signal.SIGINT)
    ingester.wait(timeout=30)
    reads = reader.stop()

    stored = stored_postmark_ids(db)
    assert not [mid for mid, times in stored.items() if times > 1]
    assert {r["json"]["MessageID"] for r in answered.values()} <= set(stored), "answered, lost"
    assert query(db, "SELECT count(*) - count(DISTINCT (provider, event_id)) FROM events") == [(0,)]
    assert {row[0] for row in query(db, "SELECT path FROM ingested_files")} >= {
        str((landing / f"backfill-{n}.ndjson").resolve()) for n in range(by_hand)
    }
    live = figures(db)
    clean = copy_warehouse(db, tmp_path / "clean.duckdb")
    run(["--db", str(clean), "refresh", "--full"], env)
    assert live == figures(clean)
    assert_reads_never_failed(reads)
    # the ingester published snapshots as it went, and was killed: the next publish leaves
    # no dead publisher's temporary file, and the snapshot is the warehouse
    published = Path(run(["snapshot"], env).stdout.strip())
    assert not [p.name for p in tmp_path.glob(".*.tmp")], "a dead publisher's file was kept"
    with connect(published, read_only=True) as con:
        in_snapshot = con.sql("SELECT count(*) FROM events").fetchall()
    assert in_snapshot == query(db, "SELECT count(*) FROM events")


# ---------------------------------------------------------------------------------------------
# a landing file a crash left open, its last line torn


def test_a_torn_last_line_left_by_a_crash_is_quarantined_and_the_rest_lands(tmp_path, processes):
    """docs/webhooks.md: files a crash left open are handed over when the service starts
    again; their last line, if torn, was never answered and goes to quarantine."""
    db = tmp_path / "warehouse.duckdb"
    messages = build_warehouse(db, 10)
    keep_open = {"landing_file_quiet_seconds": 600, "landing_file_max_seconds": 600}
    env = env_for(tmp_path, db, **webhook_settings(), **keep_open)
    service = Webhooks(processes, env, free_port()).start()
    auth = (PM_USER, PM_PASSWORD)

    def push(n: int) -> int:
        record = postmark_record(n, messages)
        return httpx.post(f"{service.url}/webhooks/postmark", json=record, auth=auth).status_code

    answers = [push(n) for n in range(20)]
    service.kill9()
    [left_open] = (tmp_path / "landing" / "webhooks").glob("*.open")
    with left_open.open("ab") as torn:  # the crash came in the middle of appending a request
        torn.write(b'{"RecordType":"Delivery","MessageID":"pm-torn","Recip')
    service.start()
    answers += [push(n) for n in range(20, 25)]
    service.stop()

    summary = json.loads(run(["ingest", "--json", str(tmp_path / "landing")], env).stdout)
    stored = stored_postmark_ids(db)
    quarantined = query(db, "SELECT raw FROM quarantine")

    assert answers == [200] * 25
    assert stored == collections.Counter(f"pm-{n}" for n in range(25))
    assert summary["quarantined"] == 1
    assert len(quarantined) == 1 and "pm-torn" in quarantined[0][0]
    assert not list((tmp_path / "landing" / "webhooks").glob("*.open"))


# ---------------------------------------------------------------------------------------------
# refresh killed at random moments


def test_refresh_killed_at_random_moments_then_run_again_equals_a_full_refresh(
    tmp_path, processes, rng
):
    """docs/warehouse.md: refresh runs in the transaction that stores (each refresh takes in the
    events stored since the last one, `events.seq` after `refresh_state.folded_seq`), and a
    publish killed at any moment leaves the previous snapshot whole, the next publish removing
    the dead publisher's temporary file. `sendout refresh` and `refresh --full` are killed at
    random moments, new events arriving in between (ingest --no-refresh): after each kill the
    figures are those from before the refresh or those of a full one, never half; at the end
    they equal a fresh full refresh's."""
    db = tmp_path / "warehouse.duckdb"
    snapshot = tmp_path / "warehouse.snapshot.duckdb"
    landing = tmp_path / "landing"
    landing.mkdir()
    people = 6_000
    messages = build_warehouse(db, people)
    env = env_for(tmp_path, db)
    write_postmark_file(landing / "first.ndjson", 12_000, messages)
    run(["ingest", "--no-refresh", str(landing / "first.ndjson")], env)
    run(["refresh"], env)
    reader = Reader(processes, db)

    moments = []
    for round_ in range(4):
        more = landing / f"more-{round_}.ndjson"
        some = messages[round_ * 1_000 : round_ * 1_000 + 2_000]  # deliveries, opens, clicks
        write_postmark_file(more, 5_000, some, prefix=f"r{round_}-")
        run(["ingest", "--no-refresh", str(more)], env)
        before = figures(db)
        expected = copy_warehouse(db, tmp_path / f"expected-{round_}.duckdb")
        run(["--db", str(expected), "refresh", "--full"], env)
        after = figures(expected)
        assert before != after  # there is something new to take in

        args = ["refresh", "--full"] if round_ % 2 else ["refresh"]
        refresh = processes.start("refresh", args, env)
        delay = rng.uniform(0.1, 1.3)
        time.sleep(delay)
        finished = refresh.poll() is not None
        Processes.kill9(refresh)
        now = figures(db)
        state = "before" if now == before else "after" if now == after else "HALF"
        moments.append((args[-1], round(delay, 3), "finished" if finished else "killed", state))
        assert state != "HALF", f"a killed refresh left half its work: {moments}"
        # the snapshot (published by the ingests and refreshes before) is whole
        with connect(snapshot, read_only=True) as con:
            assert con.sql("SELECT count(*) FROM messages").fetchall() == [(people,)]
            assert con.sql("SELECT count(*) FROM message_status").fetchall() == [(people,)]
    print("refresh kills (mode, after s, state, figures):", moments)

    run(["refresh"], env)
    reads = reader.stop()
    live = figures(db)
    clean = copy_warehouse(db, tmp_path / "clean.duckdb")
    run(["--db", str(clean), "refresh", "--full"], env)

    assert live == figures(clean)
    with connect(snapshot, read_only=True) as con:
        assert (
            con.sql("SELECT * EXCLUDE (refreshed_at) FROM message_status ORDER BY ALL").fetchall()
            == live["message_status"]
        )
    assert not [p.name for p in tmp_path.glob(".*.tmp")], "a dead publisher's file was kept"
    assert_reads_never_failed(reads)


# ---------------------------------------------------------------------------------------------
# a file of several parts: ingest killed mid-way, twice


def test_ingest_of_a_file_in_parts_killed_twice_then_run_again(tmp_path, processes, rng):
    """docs/ingest.md: a big file (more than one 32 MB chunk) is committed part by part;
    killed between two parts, a run leaves the parts before stored and the file not recorded;
    the next run reads it again, counts the events already stored as duplicates and keeps each
    quarantined line once. Readers get their turn all along."""
    db = tmp_path / "warehouse.duckdb"
    landing = tmp_path / "landing"
    landing.mkdir()
    messages = build_warehouse(db, 2_000)
    env = env_for(tmp_path, db)
    records = 420_000  # about 90 MB: three 32 MB chunks
    big = landing / "postmark-big.ndjson"
    broken = write_postmark_file(big, records, messages, broken_every=5_000)
    assert big.stat().st_size > 2 * 32 * 1024 * 1024
    reader = Reader(processes, db)

    def stored_so_far() -> int:
        return max([r.get("events", 0) for r in reader.reads()] or [0])

    moments = []
    for attempt in range(2):
        ingest = processes.start("ingest", ["ingest", "--json", str(big)], env)
        if attempt == 0:  # just after its first part is committed
            wait_until(lambda: stored_so_far() > 0, 120, "a part committed", ingest, 0.05)
            delay = rng.uniform(0.0, 0.3)
        else:  # at any moment: starting, hashing, reading again what is stored, storing
            delay = rng.uniform(0.2, 2.5)
        time.sleep(delay)
        assert ingest.poll() is None, f"the ingest ended before its kill\n{tail(ingest)}"
        Processes.kill9(ingest)
        [(stored, distinct)] = query(db, "SELECT count(*), count(DISTINCT event_id) FROM events")
        files = query(db, "SELECT count(*) FROM ingested_files")
        moments.append((round(delay, 3), stored))
        assert stored == distinct  # nothing twice
        assert files == [(0,)]  # the file is not recorded before its last part
    print("ingest kills (after s, events stored):", moments)

    again = json.loads(run(["ingest", "--json", str(big)], env, timeout=240).stdout)
    reads = reader.stop()
    stored = stored_postmark_ids(db)
    quarantined = query(db, "SELECT source_line, count(*) FROM quarantine GROUP BY ALL")

    assert again["events_new"] + again["events_duplicate"] == records - broken
    assert again["events_duplicate"] == moments[-1][1]  # what the killed runs stored
    assert len(stored) == records - broken and max(stored.values()) == 1
    assert len(quarantined) == broken, "a quarantined line is kept once"
    assert max(count for _, count in quarantined) == 1, "a quarantined line is kept once"
    assert query(db, "SELECT count(*), sum(records) FROM ingested_files") == [(1, records)]
    live = figures(db)
    clean = copy_warehouse(db, tmp_path / "clean.duckdb")
    run(["--db", str(clean), "refresh", "--full"], env)
    assert live == figures(clean)
    assert_reads_never_failed(reads)


# ---------------------------------------------------------------------------------------------
# dispatch through a real SMTP relay (aiosmtpd) and a Twilio look-alike on 127.0.0.1

PEOPLE, BATCH, SMTP_CONNECTIONS, SMS_CONNECTIONS = 2_500, 250, 3, 3


class Relays:
    """The SMTP sink (with PIPELINING, as Postfix offers it) and the Twilio fake, and what
    reached each: our message ids, one per delivery of a message."""

    def __init__(self):
        self.sink, self.controller = start_sink(pipelining=True)
        self.twilio, self.server = start_twilio()

    def settings(self) -> dict:
        return {
            "email_sender": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": self.controller.port,
            "smtp_connections": SMTP_CONNECTIONS,
            "sms_sender": "twilio",
            "twilio_account_sid": ACCOUNT,
            "twilio_auth_token": TOKEN,
            "twilio_from": "+14155550000",
            "twilio_api_base": f"http://127.0.0.1:{self.server.server_address[1]}",
            "twilio_status_callback": "https://hooks.example.org/webhooks/twilio/status",
            "sms_connections": SMS_CONNECTIONS,
            "batch_size": BATCH,
        }

    def received(self) -> collections.Counter:
        with self.twilio.lock:
            callbacks = [form.get("StatusCallback", "") for form in self.twilio.requests]
        sms = [
            parse_qs(urlparse(url).query).get("sendout_message_id", ["?"])[0] for url in callbacks
        ]
        return collections.Counter(self.sink.message_ids() + sms)

    def count(self) -> int:
        with self.twilio.lock:
            sms = len(self.twilio.requests)
        return len(self.sink.message_ids()) + sms

    def stop(self) -> None:
        self.controller.stop()
        self.server.shutdown()


@pytest.fixture
def relays():
    started = Relays()
    yield started
    started.stop()


def dispatch_setup(tmp_path: Path, relays: Relays) -> tuple[Path, str, dict, set[str]]:
    db = tmp_path / "warehouse.duckdb"
    add_people(db, PEOPLE)
    sendout_id = create_sendout(db, channels=("email", "sms"), communication_type="non_marketing")
    env = env_for(tmp_path, db, **relays.settings())
    messages = {row[0] for row in query(db, "SELECT message_id FROM messages")}
    return db, sendout_id, env, messages


def flagged(db: Path) -> set[str]:
    return {r[0] for r in query(db, "SELECT message_id FROM messages WHERE is_possible_duplicate")}


def assert_every_message_has_one_outcome_and_the_figures_add_up(db: Path, messages: set[str]):
    assert query(db, "SELECT count(*) FROM messages WHERE outcome IS NULL") == [(0,)]
    # what dispatch learnt counts once: one outcome event for a message sent once
    assert query(
        db,
        "SELECT count(*) FROM (SELECT message_id FROM events JOIN messages USING (message_id) "
        "WHERE events.provider IN ('smtp', 'twilio', 'sendout') AND NOT is_possible_duplicate "
        "GROUP BY message_id HAVING count(*) > 1)",
    ) == [(0,)]
    rows = query(
        db,
        "SELECT channel, planned, done, queued + skipped + sent + delivered + bounced "
        "+ complaint + bad_number + bad_email + opened + clicked + failed "
        "FROM sendout_channel_stats ORDER BY channel",
    )
    assert sum(planned for _, planned, _, _ in rows) == len(messages)
    for channel, planned, done, by_status in rows:
        assert done == planned == by_status, (channel, planned, done, by_status)


def test_a_dispatch_killed_twice_in_a_row_sends_everyone_and_flags_its_few_duplicates(
    tmp_path, processes, relays, rng
):
    """docs/dispatch.md, DESIGN §8: after kill -9 the next run (at once, the holder being dead
    on this host) stores what the dead run's journal holds and sends the rest: no recipient is
    lost, and only the messages going out on the connections when the process died (one per
    connection) can be sent twice, flagged `is_possible_duplicate`. Killed twice in a row (the
    second time while it resumes), with email and SMS; a reader reads throughout."""
    db, sendout_id, env, messages = dispatch_setup(tmp_path, relays)
    reader = Reader(processes, db)
    total = len(messages)

    kills = []
    # the first run once a random share is out; the second at a random moment from its start:
    # storing the dead run's journal, claiming, or sending
    dispatch = processes.start("dispatch", ["dispatch", sendout_id], env)
    at = rng.randrange(total // 10, total // 2)
    wait_until(lambda: relays.count() >= at, 120, "sending", dispatch, 0.005)
    Processes.kill9(dispatch)
    kills.append(("after sends", at, relays.count()))
    dispatch = processes.start("dispatch", ["dispatch", sendout_id], env)
    delay = rng.uniform(0.3, 2.5)
    time.sleep(delay)
    assert dispatch.poll() is None, tail(dispatch)
    Processes.kill9(dispatch)
    kills.append(("after s", round(delay, 3), relays.count()))
    print("kills (when, sends when dead):", kills, "of", total)
    final = processes.start("dispatch", ["dispatch", sendout_id], env, capture=True)
    assert final.wait(timeout=180) == 0, tail(final)
    said = final.stdout.read().decode()
    reads = reader.stop()

    received = relays.received()
    duplicates = {message_id for message_id, times in received.items() if times > 1}
    print("duplicates:", len(duplicates), "flagged:", len(flagged(db)), "said:", said.strip())
    with relays.twilio.lock:
        odd = [f for f in relays.twilio.requests if "sendout_message_id" not in str(f)]
    assert not odd, odd[:3]
    assert set(received) == messages, "a recipient was lost (or a stranger reached)"
    in_flight = 2 * (SMTP_CONNECTIONS + SMS_CONNECTIONS)  # two crashes, one per connection
    assert len(duplicates) <= in_flight
    assert max(received.values()) <= 3
    assert duplicates <= flagged(db), "sent twice but not flagged"
    assert len(flagged(db)) <= in_flight, "more flagged than were in flight"
    assert_every_message_has_one_outcome_and_the_figures_add_up(db, messages)
    assert_reads_never_failed(reads)


def test_ctrl_c_and_sigterm_at_random_moments_send_nothing_twice(tmp_path, processes, relays, rng):
    """docs/dispatch.md: a graceful stop (SIGTERM, Ctrl-C) finishes and records the batch in
    flight, then stops, giving back the claims of a batch it had claimed but not begun to send;
    nothing is sent twice, none is flagged, and running again resumes. The stops come at random
    moments, from its start-up on."""
    db, sendout_id, env, messages = dispatch_setup(tmp_path, relays)

    stops = []
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):
        dispatch = processes.start("dispatch", ["dispatch", sendout_id], env)
        delay = rng.uniform(0.2, 2.5)
        time.sleep(delay)
        before = relays.count()
        Processes.signal(dispatch, number)  # Ctrl-C signals the whole foreground group
        code = dispatch.wait(timeout=120)
        stops.append((number.name, round(delay, 3), before, relays.count(), code))
    print("stops (signal, after s, sends at signal, sends when stopped, exit):", stops)
    final = processes.start("dispatch", ["dispatch", sendout_id], env)
    assert final.wait(timeout=180) == 0, tail(final)

    received = relays.received()
    assert set(received) == messages, "a recipient was lost (or a stranger reached)"
    twice = sorted(message_id for message_id, times in received.items() if times > 1)
    assert not twice, f"{len(twice)} sent twice after graceful stops {stops}"
    assert flagged(db) == set()
    assert_every_message_has_one_outcome_and_the_figures_add_up(db, messages)


# ---------------------------------------------------------------------------------------------
# dispatch through the built-in sandbox, killed with kill -9


def sandbox_sends(landing: Path) -> dict[str, set[str]]:
    """What the sandbox reported sending, as SES reports it: for each of our message ids, the
    times of its `Send` records (one per time it was sent). A line being written is skipped."""
    sends: dict[str, set[str]] = collections.defaultdict(set)
    for path in (landing / "sandbox").glob("*.ndjson"):
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("eventType") == "Send":
                [message_id] = record["mail"]["tags"]["sendout_message_id"]
                sends[message_id].add(record["mail"]["timestamp"])
    return sends


def test_a_sandbox_dispatch_killed_sends_the_rest_once_and_flags_what_it_sends_twice(
    tmp_path, processes, rng
):
    """README: Sendout sends through the built-in sandbox, which reports like a real provider,
    with no recipient lost and none sent twice; docs/dispatch.md: after kill -9 the next run
    sends the rest, and only the messages going out when the process died (one per connection)
    can be sent twice, and those are flagged `is_possible_duplicate`. What the sandbox reports
    (an SES `Send` record per sending, docs/dispatch.md "Senders") tells what was sent."""
    db = tmp_path / "warehouse.duckdb"
    landing = tmp_path / "landing"
    add_people(db, 2_000)
    sendout_id = create_sendout(db, communication_type="non_marketing")
    env = env_for(tmp_path, db, batch_size=200)
    messages = {row[0] for row in query(db, "SELECT message_id FROM messages")}

    dispatch = processes.start("dispatch", ["dispatch", sendout_id], env)
    at = rng.randrange(200, 1_400)
    wait_until(lambda: len(sandbox_sends(landing)) >= at, 120, "sending", dispatch, 0.02)
    Processes.kill9(dispatch)
    sent_when_killed = len(sandbox_sends(landing))
    final = processes.start("dispatch", ["dispatch", sendout_id], env, capture=True)
    assert final.wait(timeout=180) == 0, tail(final)
    said = final.stdout.read().decode().strip()

    sends = sandbox_sends(landing)
    twice = {message_id for message_id, times in sends.items() if len(times) > 1}
    print(f"killed after {at} (sent {sent_when_killed}); sent twice {len(twice)}; {said}")
    assert set(sends) == messages, "a recipient was lost"
    assert query(db, "SELECT count(*) FROM messages WHERE outcome IS NULL") == [(0,)]
    assert twice <= flagged(db), (
        f"{len(twice - flagged(db))} messages were sent twice by the sandbox and not flagged "
        f"(of {len(twice)} sent twice; killed with {sent_when_killed} sent)"
    )
    assert len(twice) <= 4, f"{len(twice)} sent twice: more than were in flight"
