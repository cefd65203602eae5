"""Dispatch a send-out: claim a batch, send it, record the outcomes, until every message has one.

Each step is a short transaction on a short connection (DESIGN §9). While a batch goes out (in a
thread of its own), the outcomes of the batch before it are stored and the next batch is
claimed, so the wire waits for the warehouse only at the first claim and the last store. After
each batch's outcomes are stored, a refresh makes them count in every figure (DESIGN §5, one
truth); it runs in a transaction of its own, so the outcomes are durable even if it fails. A
graceful stop (SIGTERM, Ctrl-C) sets `stop`: the batch in flight is finished and recorded, a
batch claimed but not sent is given back, then the loop ends, so nothing is sent twice; running
again resumes with what is left. A kill (kill -9, a power cut) loses
no outcome the senders had more than a few milliseconds before: each goes to the run's journal
at once (flows/journal.py), and the next run stores what the journals hold before it claims.
"""

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import duckdb

from flows.journal import Journal, Journaled, earlier_outcomes, journal_folder
from flows.senders import Sender, senders_for
from flows.settings import Settings, settings
from warehouse import audit, dispatch_state
from warehouse.db import is_out_of_memory, open_warehouse
from warehouse.refresh import refresh_figures

log = logging.getLogger(__name__)
T = TypeVar("T")
WAIT_SECONDS = 1.0  # between looks at what other runs of the send-out still hold
BATCH_SECONDS = 5.0  # the most sending a batch holds back from the figures at a rate limit


@dataclass
class DispatchResult:
    sendout_id: str
    run_id: str
    sent: int
    progress: dispatch_state.Progress
    stopped: bool
    possibly_twice: int = 0  # messages a dead run had claimed: they may have gone out before


def run_dispatch(
    db: Path,
    sendout_id: str,
    config: Settings | None = None,
    senders: dict[str, Sender] | None = None,
    stop: threading.Event | None = None,
    on_batch: Callable[[dispatch_state.Progress], None] | None = None,
    early: bool = False,
    part: dispatch_state.Slice | None = None,
    by: audit.Actor | None = None,
) -> DispatchResult:
    """Send every message of a send-out that has no outcome yet: with `part`, that slice
    first, then whatever other runs left (a slice whose run died), until all are done. `by`:
    the person who started it, for the audit record (none when the schedule did)."""
    config = config or settings()
    stop = stop or threading.Event()
    run_id = dispatch_state.new_run_id()
    own_senders = senders is None
    senders = senders if senders is not None else senders_for(config)
    sent = possibly_twice = 0
    folder = journal_folder(db)
    journal = None
    unsent: list[str] = []  # claimed, never handed to a sender (a stop came)
    outcomes: list[dispatch_state.Outcome] = []  # sent, stored at the next claim
    sending: Future | None = None  # the batch going out while the next is claimed
    try:
        with _open(db, config) as con:
            now, lease = datetime.now(UTC), config.dispatch_lease_seconds
            bounds = _roomy(
                con, dispatch_state.start, sendout_id, run_id, now, lease, early, part, by
            )
        journal = Journal(folder, sendout_id, run_id)
        for sender in senders.values():
            if hasattr(sender, "on_outcome"):
                sender.on_outcome, sender.on_start = journal.write, journal.started
        known = Journaled()  # what dead runs' journals said, for the claims that follow
        done = -1
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dispatch-send") as wire:
            while True:
                # one short connection a batch: store the last batch's outcomes, claim the next
                batch, current = _store_and_claim(
                    db, sendout_id, run_id, outcomes, config, stop, bounds if part else None, known
                )
                unsent += [message.message_id for message in batch]
                if outcomes:  # stored: their journal goes (all of it, if none is going out)
                    journal.forget_stored(current=sending is None)
                    sent += len(outcomes)
                    if on_batch:
                        on_batch(current)
                outcomes = sending.result() if sending else []
                sending = None
                if batch and not stop.is_set():
                    possibly_twice += sum(m.is_possible_duplicate for m in batch)
                    journal.next_batch()
                    sending = wire.submit(_send, senders, batch)
                    unsent = []
                elif outcomes:
                    continue  # stored at the next turn; then the run may end
                elif stop.is_set() or current.finished:
                    break
                elif current.done == done:  # other live runs hold what is left
                    stop.wait(WAIT_SECONDS)  # until they finish it, or die and leave it to us
                done = current.done
    finally:
        left = Journaled()
        if journal is not None:  # a sender that failed mid-batch: what it sent is in there
            journal.close()
            left = earlier_outcomes(folder, sendout_id, run_id)
            # and what the senders answered that a failed store did not keep (a sender without
            # a journal, the sandbox's, has it nowhere else)
            left.outcomes += outcomes + _answered(sending)
        final = _finish(db, sendout_id, run_id, left, unsent, config)
        if own_senders:
            for sender in senders.values():
                sender.close()
    stopped = stop.is_set() and not final.finished
    return DispatchResult(sendout_id, run_id, sent, final, stopped, possibly_twice)


@contextmanager
def _open(db: Path, config: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse for one step, DuckDB's memory capped (`dispatch_memory_limit`): every
    batch appends to a growing `events` table and reads more of the warehouse, and DuckDB keeps
    what it has read and written in memory up to its limit (80% of the machine's by default),
    so without the cap a dispatch's peak grew with its send-out (docs/performance.md). What
    the batch changed is written back to the file (a checkpoint) within the cap too; a
    checkpoint that cannot be done within it leaves DuckDB's copy of the warehouse unusable (its
    write-ahead log is whole), so it is done again on a connection without the cap."""
    with open_warehouse(db, memory_limit=config.dispatch_memory_limit) as con:
        yield con
        try:
            con.execute("CHECKPOINT")
            return
        except duckdb.Error as error:
            if not is_out_of_memory(error):
                raise
            log.warning("dispatch's checkpoint needed more memory than its limit; done without")
    with open_warehouse(db) as con:
        con.execute("CHECKPOINT")


def _roomy(con: duckdb.DuckDBPyConnection, step: Callable[..., T], *args: object) -> T:
    """`step(con, *args)`, a transaction, within the cap on DuckDB's memory; if DuckDB cannot
    do it within the cap (not all of its work can spill to disk: a big warehouse's first
    refresh, say), it is rolled back and done again without the cap, for this connection."""
    try:
        return step(con, *args)
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        log.warning(
            "a step of dispatch needed more memory than SENDOUT_DISPATCH_MEMORY_LIMIT; "
            "done again without the limit"
        )
        with suppress(duckdb.Error):  # a failed COMMIT leaves its transaction open
            con.execute("ROLLBACK")
        con.execute("RESET memory_limit")
        return step(con, *args)


def _refresh(con: duckdb.DuckDBPyConnection, config: Settings) -> None:
    """The figures after a store (`refresh_figures`), DuckDB running out of memory raised for
    `_roomy` to do it again without the cap."""
    refresh_figures(con, config, raise_out_of_memory=True)


def batch_size(config: Settings) -> int:
    """How many messages a batch claims: `batch_size`, but no more than BATCH_SECONDS' worth
    at the slowest configured rate, so that a rate-limited send-out's figures still move every
    few seconds (outcomes are stored batch by batch; a batch costs about 0.2 s however big)."""
    rates = [rate for rate in (config.email_rate, config.sms_rate) if rate > 0]
    if not rates:
        return config.batch_size
    return max(1, min(config.batch_size, int(min(rates) * BATCH_SECONDS)))


def _answered(sending: Future | None) -> list[dispatch_state.Outcome]:
    """The outcomes of a batch that went out, if it went out whole."""
    if sending is None or not sending.done() or sending.exception() is not None:
        return []
    return sending.result()


def _send(senders: dict[str, Sender], batch: list[dispatch_state.Outgoing]) -> list:
    """Send a batch, channel by channel; its outcomes."""
    outcomes = []
    key = lambda message: message.channel  # noqa: E731
    for channel, messages in itertools.groupby(sorted(batch, key=key), key):
        outcomes += senders[channel].send(list(messages))
    return outcomes


def _store_and_claim(
    db: Path,
    sendout_id: str,
    run_id: str,
    outcomes: list[dispatch_state.Outcome],
    config: Settings,
    stop: threading.Event,
    bounds: tuple[str, str | None] | None,
    known: Journaled,
) -> tuple[list[dispatch_state.Outgoing], dispatch_state.Progress]:
    """Store a batch's outcomes and claim the next batch (none once stopping), then refresh
    once, so that both count in every figure at once (DESIGN §5, one truth). First, what the
    journals of dead runs hold (a crash before this run, or another slice's run that died):
    their messages are claimed again, and those with an outcome must not go out twice."""
    journaled = earlier_outcomes(journal_folder(db), sendout_id)
    known.add(journaled)
    batch: list[dispatch_state.Outgoing] = []
    size = batch_size(config)
    with _open(db, config) as con:
        now = datetime.now(UTC)
        if outcomes:
            _roomy(con, dispatch_state.record_outcomes, run_id, outcomes, now)
        if journaled.runs:
            _roomy(con, dispatch_state.record_journaled, sendout_id, run_id, journaled.of(), now)
        if not stop.is_set():
            lease = config.dispatch_lease_seconds
            claim = (sendout_id, run_id, size, now, lease, bounds, known.runs, known.started)
            batch = _roomy(con, dispatch_state.claim_batch, *claim)
        skipped = len(batch) < size  # (perhaps) some were skipped: they count too
        if outcomes or journaled.runs or skipped:
            _roomy(con, _refresh, config)
        current = _roomy(con, dispatch_state.progress, sendout_id)
    for path in journaled.files:
        path.unlink(missing_ok=True)
    return batch, current


def _finish(
    db: Path,
    sendout_id: str,
    run_id: str,
    journaled: Journaled,
    unsent: list[str],
    config: Settings,
) -> dispatch_state.Progress:
    """End the run on one connection: store what its journal still holds (`record_journaled`),
    then give back the lease and the claims never handed to a sender (`finish`); then drop
    the journal's files."""
    with _open(db, config) as con:
        now = datetime.now(UTC)
        args = (sendout_id, run_id, journaled.of(), now)
        if journaled.runs and _roomy(con, dispatch_state.record_journaled, *args):
            _roomy(con, _refresh, config)
        final = _roomy(con, dispatch_state.finish, sendout_id, run_id, now, unsent)
    for path in journaled.files:
        path.unlink(missing_ok=True)
    return final
