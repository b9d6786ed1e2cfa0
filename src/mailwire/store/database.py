"""The database handle: engines, transactions, health, and the translation of driver errors.

Theory of operation
-------------------
Callers never hold a connection across awaits of unrelated work: they open a
transaction with `read()` or `write()`, run a few statements and leave.

On SQLite (the embedded default) there is one writer at a time per database
file. A deferred transaction that reads and then writes fails immediately with
SQLITE_BUSY when another connection committed in between, whatever the busy
timeout. So writes go through a separate engine holding a single connection that
starts every transaction with `BEGIN IMMEDIATE`: writers in one process queue
on that connection, writers in other processes wait on the busy timeout, and
reads run in parallel on WAL snapshots.

Hot paths (the job queue) run a whole transaction as one synchronous function
with `run(work, write=...)`. On SQLite that function runs on a thread of the
store's own (one thread for writes, a small pool for reads) with a plain
`sqlite3` connection, so a transaction of six statements costs one hand-off
between threads instead of four per statement through aiosqlite (about 200 us
of CPU each on these machines, where SQLite itself needs tens of microseconds
per statement). The write thread's connection is a second writer in the
process: the two take turns on SQLite's own lock (busy timeout), as writers in
other processes already do. On PostgreSQL `run` is `run_sync` on a pooled
asyncpg connection, so the statements are the same on both databases.

On PostgreSQL both kinds of transaction share one pooled engine. An optional
schema (`MAILWIRE_DATABASE_SCHEMA`) isolates one Mailwire installation, or one
test run, inside a shared database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from mailwire.errors import DataDirError, StoreError, StoreUnavailableError

T = TypeVar("T")

#: How long a SQLite connection waits for another process's write lock (ms).
SQLITE_BUSY_TIMEOUT_MS = 10_000
#: Tries at switching a new SQLite file to WAL while another connection holds it (50 ms apart).
WAL_SWITCH_ATTEMPTS = 100
#: Pool sizes: reads may run in parallel; SQLite writes are serialised anyway.
READ_POOL_SIZE = 8
POSTGRES_POOL_SIZE = 10
#: How long to wait for PostgreSQL to accept a connection at start or on a ping.
CONNECT_TIMEOUT_S = 10.0


class Database:
    """Owns the engines; hands out short transactions."""

    def __init__(
        self,
        reader: AsyncEngine,
        writer: AsyncEngine,
        *,
        schema: str | None,
        threaded: _ThreadedSqlite | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.schema = schema
        self._threaded = threaded

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self._reader.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @classmethod
    def connect(cls, url: str, *, schema: str | None = None) -> Database:
        """Create the engines (lazily connecting). Use `open_database` to also verify."""
        if url.startswith("sqlite"):
            reader = _sqlite_engine(url, immediate=False, pool_size=READ_POOL_SIZE)
            writer = _sqlite_engine(url, immediate=True, pool_size=1)
            return cls(reader, writer, schema=None, threaded=_ThreadedSqlite(url))
        engine = create_async_engine(
            url,
            pool_size=POSTGRES_POOL_SIZE,
            max_overflow=POSTGRES_POOL_SIZE,
            pool_pre_ping=True,
            connect_args=_postgres_connect_args(schema),
        )
        return cls(engine, engine, schema=schema)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A transaction for reads (a consistent snapshot on both databases)."""
        async with _translated(), self._reader.begin() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction for writes; commits on success, rolls back on any exception."""
        async with _translated(), self._writer.begin() as conn:
            yield conn

    async def run(self, work: Callable[[sa.Connection], T], *, write: bool) -> T:
        """Run `work` as one transaction (commit on return, roll back on any exception)
        and return its result. `work` must only run statements on the connection:
        it may run on another thread."""
        async with _translated():
            if self._threaded is not None:
                return await self._threaded.run(work, write=write)
            engine = self._writer if write else self._reader
            async with engine.begin() as conn:
                return await conn.run_sync(work)

    async def ping(self) -> float:
        """Round-trip a trivial query; returns the latency in milliseconds."""
        started = time.perf_counter()
        async with self.read() as conn:
            await conn.execute(sa.text("SELECT 1"))
        return (time.perf_counter() - started) * 1000

    async def close(self) -> None:
        if self._threaded is not None:
            await self._threaded.close()
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()

    @property
    def sqlite_path(self) -> Path | None:
        """The database file, on SQLite."""
        if not self.is_sqlite or self._writer.url.database is None:
            return None
        return Path(self._writer.url.database)

    def insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        """An INSERT supporting ON CONFLICT clauses in this database's dialect."""
        if self.is_sqlite:
            return sqlite.insert(table)
        return postgresql.insert(table)


class _ThreadedSqlite:
    """Synchronous SQLite engines with threads of their own (see the module docstring)."""

    def __init__(self, url: str) -> None:
        sync_url = sa.make_url(url).set(drivername="sqlite+pysqlite")
        self._writer = _configured(
            sa.create_engine(
                sync_url,
                pool_size=1,
                max_overflow=0,
                pool_reset_on_return=None,
                connect_args=_sqlite_connect_args(),
            ),
            immediate=True,
        )
        self._reader = _configured(
            sa.create_engine(
                sync_url,
                pool_size=READ_POOL_SIZE,
                max_overflow=0,
                pool_reset_on_return=None,
                connect_args=_sqlite_connect_args(),
            ),
            immediate=False,
        )
        self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="mailwire-sqlite-write")
        self._read_threads = ThreadPoolExecutor(
            READ_POOL_SIZE, thread_name_prefix="mailwire-sqlite-read"
        )

    async def run(self, work: Callable[[sa.Connection], T], *, write: bool) -> T:
        engine, threads = (
            (self._writer, self._write_thread) if write else (self._reader, self._read_threads)
        )

        def transaction() -> T:
            with engine.begin() as conn:
                return work(conn)

        return await asyncio.get_running_loop().run_in_executor(threads, transaction)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for threads, engine in (
            (self._write_thread, self._writer),
            (self._read_threads, self._reader),
        ):
            # Pooled connections belong to the pool's threads: close them there.
            await loop.run_in_executor(threads, engine.dispose)
            threads.shutdown(wait=True)


def _sqlite_connect_args() -> dict[str, Any]:
    # A pooled connection may be closed by another thread than the one that used it.
    return {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}


def _sqlite_engine(url: str, *, immediate: bool, pool_size: int) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        # Every use ends in its own COMMIT or ROLLBACK (read()/write() are
        # transactions), so the pool's extra rollback on return is a wasted
        # round trip to aiosqlite's thread.
        pool_reset_on_return=None,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )
    _configured(engine.sync_engine, immediate=immediate)
    return engine


def _configured(engine: sa.Engine, *, immediate: bool) -> sa.Engine:
    """Our pragmas on every new connection, and our own BEGIN on every transaction."""
    begin_statement = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so that BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(begin_statement)

    return engine


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL (persistent, so only the first connection ever changes it).

    The switch needs an exclusive lock and SQLite does not wait for it on the busy
    handler, so two processes opening a new database at once can see "locked":
    retry a bounded number of times. This runs on the driver's thread, not the loop.
    """
    for attempt in range(WAL_SWITCH_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:
            if "locked" not in str(exc) or attempt == WAL_SWITCH_ATTEMPTS - 1:
                raise
            time.sleep(0.05)


def _postgres_connect_args(schema: str | None) -> dict[str, Any]:
    args: dict[str, Any] = {"timeout": CONNECT_TIMEOUT_S}
    if schema is not None:
        # The schema name was validated as a plain identifier by Settings.
        args["server_settings"] = {"search_path": schema}
    return args


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    """Turn driver exceptions into the store's own errors (with no SQL or values)."""
    try:
        yield
    except (OperationalError, OSError) as exc:
        raise StoreUnavailableError(describe_error(exc)) from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailableError(describe_error(exc)) from exc
        raise


def escape_like(text: str) -> str:
    """`text` as a literal inside a LIKE pattern that uses `escape="\\"`."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def describe_error(exc: BaseException) -> str:
    """One line about a driver failure, without the statement or its parameters."""
    original = getattr(exc, "orig", None) or exc
    lines = str(original).splitlines()
    return (lines[0] if lines else type(original).__name__)[:300]


async def open_database(url: str, *, schema: str | None, data_dir: Path | None) -> Database:
    """Connect and prove the database answers; refuse clearly when it cannot be used."""
    if url.startswith("sqlite") and data_dir is not None:
        prepare_data_dir(data_dir)
    database = Database.connect(url, schema=schema)
    try:
        async with database.read() as conn:
            await conn.execute(sa.text("SELECT 1"))
        if database.is_sqlite and data_dir is not None:
            _restrict_files(data_dir)
    except (StoreError, SQLAlchemyError) as exc:
        await database.close()
        if database.is_sqlite:
            raise DataDirError(
                f"cannot open the database in {data_dir}: {describe_error(exc)}"
            ) from None
        raise StoreUnavailableError(f"cannot use the database: {describe_error(exc)}") from None
    return database


def _restrict_files(data_dir: Path) -> None:
    """Database files hold token hashes and ciphertexts: owner-only, like the directory."""
    for path in data_dir.glob("mailwire.db*"):
        path.chmod(0o600)


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data directory (0700) if needed; refuse a path that cannot hold data."""
    try:
        if data_dir.exists() and not data_dir.is_dir():
            raise DataDirError(f"data directory {data_dir} exists but is not a directory")
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = data_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except DataDirError:
        raise
    except OSError as exc:
        raise DataDirError(
            f"data directory {data_dir} is not usable: {exc.strerror or exc}"
        ) from None
