"""Short DuckDB connections, one writer at a time, and the ordered schema migrations (DESIGN §9).

No process keeps a connection open between operations: callers open one with `connect()` for a
single unit of work. Another process holding the file makes DuckDB fail at once, so opening
retries with backoff until `lock_timeout` seconds have passed.
"""

import random
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from importlib import resources
from pathlib import Path
from typing import TypeVar

import duckdb
import pyarrow as pa

RETRY_MAX_SECONDS = 0.05  # the longest wait between two tries to open a locked warehouse
T = TypeVar("T")
# A writer gives the warehouse up to other processes after this much work; with the batch in
# hand finished and committed, no hold of a 1 GB ingest passed 0.95 s (docs/ingest.md)
HOLD_SECONDS = 0.5
YIELD_SECONDS = 0.1  # then this long without it, so that a waiting reader gets its turn
# Rows per row group a writer appends (DuckDB's default is 122,880). Each commit rewrites the
# last, partly filled row group of a table it appended to, so with the default a long ingest's
# commits took up to 1.7 s as that group filled (zstd-compressing up to 122,880 raw payloads)
# and readers waited up to 3.8 s; with 32,768 no commit took over 0.3 s (docs/performance.md).
ROW_GROUP_ROWS = 32_768


class WarehouseLockedError(RuntimeError):
    """Another process kept the warehouse file locked for longer than we were willing to wait."""


class NotAWarehouseError(RuntimeError):
    """The file named as the warehouse is something else (not a DuckDB database)."""


class NoWarehouseError(NotAWarehouseError):
    """No file is where the warehouse is said to be, for a command that only reads."""


def _is_lock_conflict(error: duckdb.Error) -> bool:
    """Another process holds the file ("Could not set lock on file ... Conflicting lock is
    held"), or another connection of this process ("Unique file handle conflict"): both are
    waited out. (Not any message with "lock" in it: "could not allocate block" is memory.)"""
    message = str(error).lower()
    return "could not set lock" in message or "file handle conflict" in message


def is_out_of_memory(error: BaseException) -> bool:
    """DuckDB ran out of the memory it may use (its `memory_limit`), whether it said so itself,
    through the Arrow reader of a result (an `OSError` then), or as why a checkpoint failed (an
    `IOException`: "Checkpoint failed ... could not allocate block")."""
    if isinstance(error, duckdb.OutOfMemoryException):
        return True
    message = str(error)
    return isinstance(error, OSError | duckdb.Error) and (
        "Out of Memory Error" in message or "could not allocate block" in message
    )


@contextmanager
def connect(
    path: Path | str,
    *,
    read_only: bool = False,
    lock_timeout: float = 30.0,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse for one unit of work, waiting out other processes' locks."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout
    delay = 0.01
    while True:
        con = duckdb.connect()  # in memory; the warehouse is attached to it and made the default
        try:
            _attach(con, path, read_only)
            break
        except duckdb.Error as error:
            con.close()
            if "not a valid DuckDB database file" in str(error):
                raise NotAWarehouseError(
                    f"{path} is not a Sendout warehouse: it exists but is no DuckDB database "
                    "(check --db or $SENDOUT_DB)"
                ) from error
            if not _is_lock_conflict(error) or time.monotonic() >= deadline:
                if _is_lock_conflict(error):
                    raise WarehouseLockedError(
                        f"{path} stayed locked by another process for {lock_timeout:.0f} s"
                    ) from error
                raise
            time.sleep(delay * (1 + random.random() / 2))
            delay = min(delay * 2, RETRY_MAX_SECONDS)
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def _attach(con: duckdb.DuckDBPyConnection, path: Path, read_only: bool) -> None:
    # TYPE duckdb: a file of another kind (SQLite) is refused, not attached through an extension
    mode = "READ_ONLY" if read_only else f"ROW_GROUP_SIZE {ROW_GROUP_ROWS}"
    options = f"TYPE duckdb, {mode}"
    quoted = str(path).replace("'", "''")
    con.execute(f"ATTACH '{quoted}' AS warehouse ({options})")
    con.execute("USE warehouse")


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, data: object) -> Iterator[None]:
    """`data` (an Arrow table, a polars or pandas frame) readable in SQL as `name` in the block.
    A statement that fails inside a transaction leaves it aborted, and DuckDB then refuses the
    unregistering too: the block's own error is raised, not that refusal (the name goes with
    the rollback or is replaced by the next registration of it)."""
    con.register(name, data)
    try:
        yield
    except BaseException:
        with suppress(duckdb.Error):
            con.unregister(name)
        raise
    con.unregister(name)


def fetch_dicts(result: duckdb.DuckDBPyConnection) -> list[dict]:
    """Every row of an executed query as a dict keyed by column name."""
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


# arrow_table's extra copy is cheaper than planning twice (see there)
warnings.filterwarnings("ignore", "Arrow output on a DB-API result", UserWarning)


def arrow_table(con: duckdb.DuckDBPyConnection, query: str, params: dict) -> pa.Table:
    """The query's rows as an Arrow table, the query planned once. For a query whose planning
    costs more than its rows (a parser's, with hundreds of macro expressions: 35 ms to plan),
    this beats `con.sql(query).to_arrow_table()`, which plans twice (the relation, then its
    run), DuckDB's warning of an extra copy notwithstanding: measured 35 against 53 ms for
    10 parsed records, 70 against 85 ms for 20,000. (That warning is silenced for the whole
    process, above: `warnings.catch_warnings` is not safe with threads, and ingest parses on
    one while it stores on another.)"""
    return con.execute(query, params).to_arrow_table()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run a block as one transaction: all of it is committed, or none of it."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


@contextmanager
def rolled_back(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run a block in a transaction that is rolled back however it ends: what it would do,
    with nothing kept (ids drawn from sequences stay drawn)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    finally:
        con.execute("ROLLBACK")


def _migration_files() -> list[tuple[int, str, str]]:
    folder = resources.files("warehouse") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append((int(number), name, entry.read_text()))
    return sorted(found)


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations this warehouse has not seen, in order; return the names applied."""
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version     INTEGER PRIMARY KEY,
            name        VARCHAR NOT NULL,
            applied_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
        )
        """
    )
    done = {row[0] for row in con.sql("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, name, sql in _migration_files():
        if version in done:
            continue
        with transaction(con):
            con.execute(sql)
            con.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name]
            )
        applied.append(f"{version:04d}_{name}")
    return applied


@contextmanager
def open_warehouse(
    path: Path | str,
    lock_timeout: float = 30.0,
    memory_limit: str | None = None,
    create: bool = True,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to an up-to-date warehouse, created on first use (unless not
    `create`: then NoWarehouseError, for commands that only read, where a new empty warehouse
    would answer a mistyped path with nothing).

    `memory_limit` (DuckDB's words: "64MB") caps what DuckDB keeps in memory for the work that
    follows (not for opening the file and migrating it): the blocks it has read stay cached up
    to the limit, and work that can spill goes beyond it into `<warehouse>.tmp`. A long writer
    that touches more and more of a growing warehouse (a dispatch) stays flat with it; without
    it DuckDB keeps up to 80% of the machine's memory.
    """
    if not create and not Path(path).exists():
        raise NoWarehouseError(
            f"there is no warehouse at {path}: check --db or $SENDOUT_DB (ingest, "
            "`sendout contacts import` or `sendout demo` make one)"
        )
    with connect(path, lock_timeout=lock_timeout) as con:
        migrate(con)
        if memory_limit is not None:
            con.execute("SET temp_directory = ?", [f"{path}.tmp"])
            con.execute("SET memory_limit = ?", [memory_limit])
        yield con


class WriterHold:
    """A long writer's hold on the warehouse, given up to other processes after every
    `hold_seconds` of work (DESIGN §9: short transactions; a dashboard read never waits long).

    `con` is the current connection. Between two units of work the writer calls `share()` when
    `due()`; inside a transaction it calls `next_part()`, which commits what is done, lets the
    others in and begins again, so a unit of any size holds the file for under a second at a
    time. `prepare` readies a connection for work that needs more than the warehouse (temporary
    macros, which do not outlive it), the first time `prepared()` is asked for on it: a hold
    whose work needs none of it pays nothing.
    """

    def __init__(
        self,
        path: Path | str | None,
        hold_seconds: float = HOLD_SECONDS,
        prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    ):
        self.path, self.hold_seconds, self.prepare = path, hold_seconds, prepare
        self._stack = ExitStack()
        self.con: duckdb.DuckDBPyConnection | None = None
        self._prepared: duckdb.DuckDBPyConnection | None = None
        self.since = time.monotonic()

    @classmethod
    def keeping(
        cls,
        con: duckdb.DuckDBPyConnection,
        prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    ) -> "WriterHold":
        """A hold on a connection the caller owns and keeps: it is never given up."""
        hold = cls(None, float("inf"), prepare)
        hold.con = con
        return hold

    def __enter__(self) -> "WriterHold":
        self._open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _open(self) -> None:
        self.con = self._stack.enter_context(open_warehouse(self.path))
        self.since = time.monotonic()

    def prepared(self) -> duckdb.DuckDBPyConnection:
        """The current connection, readied by `prepare` once."""
        if self.prepare and self._prepared is not self.con:
            self.prepare(self.con)
            self._prepared = self.con
        return self.con

    def can_share(self) -> bool:
        """Whether the hold may give the warehouse up (not on a caller's own connection)."""
        return self.path is not None

    def due(self) -> bool:
        """True once the warehouse has been held for `hold_seconds`."""
        return self.can_share() and time.monotonic() - self.since >= self.hold_seconds

    def share(self, meanwhile: Callable[[], T] | None = None) -> T | None:
        """Close the connection, let a waiting process in (doing `meanwhile`'s work without the
        warehouse, if any), and open it again. Returns what `meanwhile` returned."""
        self._stack.close()
        released = time.monotonic()
        done = meanwhile() if meanwhile else None
        # readers retry every RETRY_MAX_SECONDS at most: give them at least this long
        time.sleep(max(0.0, YIELD_SECONDS - (time.monotonic() - released)))
        self._open()
        return done

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """`transaction` on whichever connection is current when the block ends. A rollback
        takes back what `prepare` made in it too (temporary macros): `prepared()` makes it
        again."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            self._prepared = None
            raise
        self.con.execute("COMMIT")

    def next_part(self) -> None:
        """Inside `transaction()`: commit what is done, share, and begin again; the caller then
        prepares the new connection's temporary state (`prepared()` does it again)."""
        self.con.execute("COMMIT")
        self.share()
        self.con.execute("BEGIN TRANSACTION")
