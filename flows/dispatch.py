"""Dispatch a send-out: claim a batch, send it, record the outcomes, until every message has one.

Each step is a short transaction on a short connection (DESIGN §9). After each batch's outcomes
are stored, a refresh makes them count in every figure (DESIGN §5, one truth); it runs in a
transaction of its own, so the outcomes are durable even if it fails. A graceful stop (SIGTERM,
Ctrl-C) sets `stop`: the batch in flight is finished and recorded, then the loop ends, so nothing
is sent twice; running again resumes with what is left. A kill (kill -9, a power cut) loses
no outcome the senders had more than a few milliseconds before: each goes to the run's journal
at once (flows/journal.py), and the next run stores what the journals hold before it claims.
"""

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flows.journal import Journal, Journaled, earlier_outcomes, journal_folder
from flows.senders import Sender, senders_for
from flows.settings import Settings, settings
from warehouse import dispatch_state
from warehouse.db import open_warehouse
from warehouse.refresh import refresh_figures

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
) -> DispatchResult:
    """Send every message of a send-out that has no outcome yet: with `part`, that slice
    first, then whatever other runs left (a slice whose run died), until all are done."""
    config = config or settings()
    stop = stop or threading.Event()
    run_id = dispatch_state.new_run_id()
    own_senders = senders is None
    senders = senders if senders is not None else senders_for(config)
    sent = possibly_twice = 0
    folder = journal_folder(db)
    journal = None
    try:
        with open_warehouse(db) as con:
            now, lease = datetime.now(UTC), config.dispatch_lease_seconds
            bounds = dispatch_state.start(con, sendout_id, run_id, now, lease, early, part)
        journal = Journal(folder, sendout_id, run_id)
        for sender in senders.values():
            if hasattr(sender, "on_outcome"):
                sender.on_outcome, sender.on_start = journal.write, journal.started
        outcomes: list[dispatch_state.Outcome] = []
        known = Journaled()  # what dead runs' journals said, for the claims that follow
        done = -1
        while True:
            # one short connection a batch: store the last batch's outcomes, claim the next
            batch, current = _store_and_claim(
                db, sendout_id, run_id, outcomes, config, stop, bounds if part else None, known
            )
            if outcomes:
                journal.empty()
                sent += len(outcomes)
                if on_batch:
                    on_batch(current)
            outcomes = []
            if stop.is_set() or (not batch and current.finished):
                break
            if not batch and current.done == done:  # other live runs hold what is left
                stop.wait(WAIT_SECONDS)  # until they finish it, or die and leave it to us
            done = current.done
            possibly_twice += sum(m.is_possible_duplicate for m in batch)
            key = lambda message: message.channel  # noqa: E731
            for channel, messages in itertools.groupby(sorted(batch, key=key), key):
                outcomes += senders[channel].send(list(messages))
    finally:
        if journal is not None:  # a sender that failed mid-batch: what it sent is in there
            journal.close()
            _store_journaled(db, run_id, earlier_outcomes(folder, sendout_id, run_id), config)
        with open_warehouse(db) as con:
            final = dispatch_state.finish(con, sendout_id, run_id, datetime.now(UTC))
        if own_senders:
            for sender in senders.values():
                sender.close()
    stopped = stop.is_set() and not final.finished
    return DispatchResult(sendout_id, run_id, sent, final, stopped, possibly_twice)


def batch_size(config: Settings) -> int:
    """How many messages a batch claims: `batch_size`, but no more than BATCH_SECONDS' worth
    at the slowest configured rate, so that a rate-limited send-out's figures still move every
    few seconds (outcomes are stored batch by batch; a batch costs about 0.2 s however big)."""
    rates = [rate for rate in (config.email_rate, config.sms_rate) if rate > 0]
    if not rates:
        return config.batch_size
    return max(1, min(config.batch_size, int(min(rates) * BATCH_SECONDS)))


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
    with open_warehouse(db) as con:
        now = datetime.now(UTC)
        if outcomes:
            dispatch_state.record_outcomes(con, run_id, outcomes, now)
        if journaled.outcomes:
            dispatch_state.record_journaled(con, run_id, journaled.outcomes, now)
        if not stop.is_set():
            lease = config.dispatch_lease_seconds
            batch = dispatch_state.claim_batch(
                con, sendout_id, run_id, size, now, lease, bounds, known.runs, known.started
            )
        skipped = len(batch) < size  # (perhaps) some were skipped: they count too
        if outcomes or journaled.outcomes or skipped:
            refresh_figures(con, config)
        current = dispatch_state.progress(con, sendout_id)
    for path in journaled.files:
        path.unlink(missing_ok=True)
    return batch, current


def _store_journaled(db: Path, run_id: str, journaled: Journaled, config: Settings) -> None:
    """Store the journaled outcomes of messages that have none yet, then drop the journals."""
    if journaled.outcomes:
        with open_warehouse(db) as con:
            dispatch_state.record_journaled(con, run_id, journaled.outcomes, datetime.now(UTC))
            refresh_figures(con, config)
    for path in journaled.files:
        path.unlink(missing_ok=True)
