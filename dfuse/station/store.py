"""The flash record: one row per flashed board, in SQLite (default) or PostgreSQL.

One schema (SQLAlchemy Core) serves both databases; it is versioned in the
``dfuse_meta`` table and migrated when the store is opened. A line of stations
shares one PostgreSQL database (``postgresql://user@host/db``); counters for
``counter`` stamps are allocated by the database, so two stations never hand out
the same number:

* a counter's next number lives in one row of ``dfuse_counters``, taken under a row
  lock (``UPDATE ... RETURNING`` on PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite);
* a number reserved for a board whose flash then failed goes to ``dfuse_counter_free``
  *in the same transaction as that board's failed record*, and is handed out again
  before any new number (``FOR UPDATE SKIP LOCKED`` on PostgreSQL). So no number is
  lost unless a board was flashed with it, and none is given twice to flashed boards.

Needs the ``station`` extra (``pip install 'pydfuse[station]'``: SQLAlchemy and psycopg).

>>> store = RecordStore.open(":memory:")
>>> n = store.allocate("0x0807FF00:counter:1:4", start=1)
>>> store.add(FlashRecord(time=utc_now(), station="bench", serial="A1", part="STM32F4 512K",
...     image_name="fw.hex", image_sha256="00" * 32, result="ok",
...     stamps=({"address": 0x0807FF00, "spec": "counter:1:4", "value": n},)))
1
>>> [(r.serial, r.stamps[0]["value"]) for r in store.query()]
[('A1', 1)]
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dfuse.errors import RecordStoreError

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "DEFAULT_LOG_ENV",
    "SCHEMA_VERSION",
    "FlashRecord",
    "RecordStore",
    "default_store_path",
    "utc_now",
]

#: The schema version this dfuse writes; older stores are migrated on open.
SCHEMA_VERSION = 1
#: Environment variable naming the default record store (a path or a URL).
DEFAULT_LOG_ENV = "DFUSE_LOG"
_EXTRA_HINT = "the flash record needs the 'station' extra: pip install 'pydfuse[station]'"


def utc_now() -> str:
    """The time now as the record writes it: ISO 8601, UTC, microseconds
    (``2026-12-04T05:36:05.123456Z``; these strings sort as the times do)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_store_path() -> Path:
    """``records.sqlite`` in the user's data directory (``$XDG_DATA_HOME/dfuse`` or
    ``~/.local/share/dfuse``; ``%LOCALAPPDATA%\\dfuse`` on Windows;
    ``~/Library/Application Support/dfuse`` on macOS)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "dfuse" / "records.sqlite"


@dataclass(frozen=True, slots=True)
class FlashRecord:
    """One board's flash.

    Attributes:
        time: when the flash started (ISO 8601 UTC, :func:`utc_now`).
        station: the station's id (by default the host name).
        serial: the board's USB serial string (``None`` if it has none).
        part: the part (:func:`dfuse.station.uid.part_name`).
        image_name: the image's file name.
        image_sha256: the SHA-256 of the image (before stamping).
        result: ``"ok"`` or ``"failed"``.
        error: what went wrong (``None`` when ok).
        error_type: the exception's class name (``None`` when ok).
        stamps: ``{"address": int, "spec": str, "value": ...}`` per stamp written.
        path: the board's bus path.
        sectors_erased: sectors erased (a mass erase counts as one).
        bytes_written: bytes written.
        durations: seconds per phase (``open``, ``erase``, ``write``, ``verify``, ``leave``).
        duration: seconds from opening to the end.
        id: the row id in the store (``None`` before it is added).
    """

    time: str
    station: str
    serial: str | None
    part: str
    image_name: str
    image_sha256: str
    result: str
    error: str | None = None
    error_type: str | None = None
    stamps: tuple[Mapping[str, Any], ...] = ()
    path: str = ""
    sectors_erased: int = 0
    bytes_written: int = 0
    durations: Mapping[str, float] = field(default_factory=dict)
    duration: float = 0.0
    id: int | None = None

    @property
    def ok(self) -> bool:
        """Whether the board was flashed."""
        return self.result == "ok"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable record (``dfuse log --json``)."""
        return {
            "id": self.id,
            "time": self.time,
            "station": self.station,
            "serial": self.serial,
            "path": self.path,
            "part": self.part,
            "image_name": self.image_name,
            "image_sha256": self.image_sha256,
            "result": self.result,
            "error": self.error,
            "error_type": self.error_type,
            "stamps": [dict(s) for s in self.stamps],
            "sectors_erased": self.sectors_erased,
            "bytes_written": self.bytes_written,
            "durations": {k: round(v, 6) for k, v in self.durations.items()},
            "duration": round(self.duration, 6),
        }


CSV_FIELDS = (
    "id",
    "time",
    "station",
    "serial",
    "path",
    "part",
    "image_name",
    "image_sha256",
    "result",
    "error",
    "error_type",
    "stamps",
    "sectors_erased",
    "bytes_written",
    "duration",
)


def _import_sqlalchemy() -> Any:
    try:
        import sqlalchemy
    except ImportError as exc:  # pragma: no cover - the extra is installed in CI
        raise RecordStoreError(_EXTRA_HINT) from exc
    return sqlalchemy


def _redact(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _at, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


def _engine_url(location: str | os.PathLike[str] | None) -> tuple[str, str]:
    """(SQLAlchemy URL, the location as shown to users)."""
    if location is None:
        env = os.environ.get(DEFAULT_LOG_ENV)
        location = env if env else default_store_path()
    text = os.fspath(location)
    if text == ":memory:":
        return "sqlite://", ":memory:"
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme in ("postgresql", "postgres"):
            rest = text.split("://", 1)[1]
            return "postgresql+psycopg://" + rest, _redact(text)
        if scheme.startswith(("postgresql+", "sqlite")):
            return text, _redact(text)
        raise RecordStoreError(
            f"unknown record store scheme {scheme!r}: expected a file path, sqlite:///PATH "
            "or postgresql://USER@HOST/DB",
            url=_redact(text),
        )
    path = Path(text).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecordStoreError(f"cannot create its directory: {exc}", url=str(path)) from exc
    return f"sqlite:///{path}", str(path)


class _Schema:
    """The tables (one :class:`sqlalchemy.MetaData`)."""

    def __init__(self, sa: Any) -> None:
        self.metadata = sa.MetaData()
        self.meta = sa.Table(
            "dfuse_meta",
            self.metadata,
            sa.Column("key", sa.String(64), primary_key=True),
            sa.Column("value", sa.String(256), nullable=False),
        )
        self.records = sa.Table(
            "dfuse_flash_records",
            self.metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("time", sa.String(32), nullable=False, index=True),
            sa.Column("station", sa.String(255), nullable=False),
            sa.Column("serial", sa.String(255), index=True),
            sa.Column("path", sa.String(64), nullable=False, default=""),
            sa.Column("part", sa.String(64), nullable=False),
            sa.Column("image_name", sa.String(255), nullable=False),
            sa.Column("image_sha256", sa.String(64), nullable=False),
            sa.Column("result", sa.String(8), nullable=False),
            sa.Column("error", sa.Text),
            sa.Column("error_type", sa.String(64)),
            sa.Column("stamps", sa.Text, nullable=False),
            sa.Column("sectors_erased", sa.Integer, nullable=False),
            sa.Column("bytes_written", sa.BigInteger, nullable=False),
            sa.Column("durations", sa.Text, nullable=False),
            sa.Column("duration", sa.Float, nullable=False),
        )
        self.counters = sa.Table(
            "dfuse_counters",
            self.metadata,
            sa.Column("name", sa.String(128), primary_key=True),
            sa.Column("next_value", sa.BigInteger, nullable=False),
        )
        self.free = sa.Table(
            "dfuse_counter_free",
            self.metadata,
            sa.Column("name", sa.String(128), primary_key=True),
            sa.Column("value", sa.BigInteger, primary_key=True),
        )


#: Migrations: ``MIGRATIONS[n](connection, schema)`` brings a version ``n`` store to
#: ``n + 1``; they run in the transaction that opens the store (with the other stations
#: held off by an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite). Version 0
#: is an empty database: the tables of the current version are created directly.
MIGRATIONS: dict[int, Any] = {}


class RecordStore:
    """Where flash records go, and where counters come from.

    Open with :meth:`open`; every method is thread-safe (each takes a connection from
    the engine's pool for one transaction).

    Attributes:
        url: the store's location, any password removed.
        dialect: ``"sqlite"`` or ``"postgresql"``.
    """

    def __init__(self, engine: sa.Engine, url: str) -> None:
        self._sa = _import_sqlalchemy()
        self._engine = engine
        self._schema = _Schema(self._sa)
        self.url = url
        self.dialect: str = engine.dialect.name
        # SQLite: one transaction at a time in this process (other processes wait on
        # BEGIN IMMEDIATE); PostgreSQL serialises in the server
        self._guard: AbstractContextManager[object] = (
            threading.Lock() if self.dialect == "sqlite" else nullcontext()
        )

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, location: str | os.PathLike[str] | None = None) -> RecordStore:
        """Open (create, migrate) the store at ``location``: a file path, ``":memory:"``,
        ``sqlite:///PATH`` or ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DB`` (also
        ``postgresql://USER@/DB?host=/socket/dir``). Default: ``$DFUSE_LOG``, else
        :func:`default_store_path`.

        The store is written to once here (the ``opened`` time in ``dfuse_meta``), so a
        store that is unreachable or read-only raises :class:`~dfuse.errors.RecordStoreError`
        now, before any board is flashed.
        """
        sa = _import_sqlalchemy()
        engine_url, shown = _engine_url(location)
        try:
            if engine_url.startswith("sqlite"):
                engine = cls._sqlite_engine(sa, engine_url)
            else:
                engine = sa.create_engine(
                    engine_url,
                    pool_pre_ping=True,
                    # a connection per worker of a busy station, none waiting for another
                    pool_size=16,
                    max_overflow=48,
                    connect_args={"connect_timeout": 10},
                )
        except RecordStoreError:
            raise
        except Exception as exc:
            raise RecordStoreError(_reason(exc), url=shown) from exc
        store = cls(engine, shown)
        try:
            store._migrate()
        except RecordStoreError:
            engine.dispose()
            raise
        except Exception as exc:
            engine.dispose()
            raise RecordStoreError(_reason(exc), url=shown) from exc
        return store

    @staticmethod
    def _sqlite_engine(sqla: Any, url: str) -> sa.Engine:
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 60, "check_same_thread": False}}
        if url == "sqlite://":
            kwargs["poolclass"] = sqla.pool.StaticPool  # one shared in-memory database
        engine: sa.Engine = sqla.create_engine(url, **kwargs)

        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # let SQLAlchemy's begin() emit BEGIN IMMEDIATE: the write lock is taken at
            # the start of every transaction, so counter allocation is serialised
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout = 60000")
            # write-ahead log: readers do not block the writer, and a commit is one fsync
            # (synchronous stays FULL: a record survives a power cut of the station)
            with contextlib.suppress(Exception):  # a read-only file keeps its journal mode
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.close()

        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        sqla.event.listen(engine, "connect", _connect)
        sqla.event.listen(engine, "begin", _begin)
        return engine

    def _migrate(self) -> None:
        sa, schema = self._sa, self._schema
        with self._guard, self._engine.begin() as conn:
            if self.dialect == "postgresql":
                # stations opening a new database at once: one creates the tables
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(74657236)"))
            inspector = sa.inspect(conn)
            version = 0
            if inspector.has_table("dfuse_meta"):
                row = conn.execute(
                    sa.select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
                ).scalar()
                version = int(row) if row is not None else 0
            if version > SCHEMA_VERSION:
                raise RecordStoreError(
                    f"the store has schema version {version}; this dfuse knows up to "
                    f"{SCHEMA_VERSION} (upgrade dfuse)",
                    url=self.url,
                )
            if version == 0:
                schema.metadata.create_all(conn)
                version = SCHEMA_VERSION
            while version < SCHEMA_VERSION:
                MIGRATIONS[version](conn, schema)
                version += 1
            self._put_meta(conn, "schema_version", str(version))
            self._put_meta(conn, "opened", utc_now())

    def _put_meta(self, conn: Any, key: str, value: str) -> None:
        meta = self._schema.meta
        updated = conn.execute(
            self._sa.update(meta).where(meta.c.key == key).values(value=value)
        ).rowcount
        if not updated:
            conn.execute(self._sa.insert(meta).values(key=key, value=value))

    @property
    def schema_version(self) -> int:
        """The store's schema version."""
        meta = self._schema.meta
        with self._guard, self._engine.connect() as conn:
            row = conn.execute(
                self._sa.select(meta.c.value).where(meta.c.key == "schema_version")
            ).scalar()
        return int(row) if row is not None else 0

    def close(self) -> None:
        """Release the connections."""
        self._engine.dispose()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RecordStore({self.url!r})"

    # ------------------------------------------------------------------ counters

    def allocate(self, name: str, *, start: int = 1) -> int:
        """Reserve the next number of counter ``name`` (a sequence starting at ``start``):
        a number released by :meth:`add` for a failed board first, else a new one."""
        sa, schema = self._sa, self._schema
        free, counters = schema.free, schema.counters
        try:
            with self._guard, self._engine.begin() as conn:
                reused = conn.execute(
                    sa.select(free.c.value)
                    .where(free.c.name == name)
                    .order_by(free.c.value)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).scalar()
                if reused is not None:
                    conn.execute(sa.delete(free).where(free.c.name == name, free.c.value == reused))
                    return int(reused)
                conn.execute(self._insert_ignore(counters, name=name, next_value=start))
                value = conn.execute(
                    sa.update(counters)
                    .where(counters.c.name == name)
                    .values(next_value=counters.c.next_value + 1)
                    .returning(counters.c.next_value)
                ).scalar_one()
                return int(value) - 1
        except Exception as exc:
            raise RecordStoreError(_reason(exc), url=self.url) from exc

    def _insert_ignore(self, table: Any, **values: Any) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).values(**values).on_conflict_do_nothing()
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).values(**values).on_conflict_do_nothing()

    def release(self, name: str, values: Iterable[int]) -> None:
        """Give reserved numbers of counter ``name`` back (no board was flashed with them)."""
        try:
            with self._guard, self._engine.begin() as conn:
                self._release(conn, [(name, v) for v in values])
        except Exception as exc:
            raise RecordStoreError(_reason(exc), url=self.url) from exc

    def _release(self, conn: Any, reserved: Sequence[tuple[str, int]]) -> None:
        for name, value in reserved:
            conn.execute(self._insert_ignore(self._schema.free, name=name, value=value))

    # ------------------------------------------------------------------ records

    def add(self, record: FlashRecord, *, release: Sequence[tuple[str, int]] = ()) -> int:
        """Store ``record``; return its id. ``release`` lists ``(counter, number)`` pairs
        reserved for this board to give back in the same transaction (a failed board)."""
        sa = self._sa
        row = record.to_dict()
        del row["id"]
        row["stamps"] = json.dumps(row["stamps"])
        row["durations"] = json.dumps(row["durations"])
        try:
            with self._guard, self._engine.begin() as conn:
                new_id = conn.execute(
                    sa.insert(self._schema.records)
                    .values(**row)
                    .returning(self._schema.records.c.id)
                ).scalar_one()
                self._release(conn, release)
        except Exception as exc:
            raise RecordStoreError(_reason(exc), url=self.url) from exc
        return int(new_id)

    def query(
        self,
        *,
        serial: str | None = None,
        since: str | None = None,
        failed: bool = False,
        station: str | None = None,
        limit: int | None = None,
    ) -> list[FlashRecord]:
        """Records in the order they were added, filtered: one board's ``serial``, at or
        after ``since`` (ISO 8601, e.g. ``2026-12-04`` or ``2026-12-04T05:00``), only the
        failed ones, one ``station``; at most the last ``limit``."""
        sa = self._sa
        table = self._schema.records
        stmt = sa.select(table)
        if serial is not None:
            stmt = stmt.where(table.c.serial == serial)
        if since is not None:
            stmt = stmt.where(table.c.time >= _normalise_since(since))
        if failed:
            stmt = stmt.where(table.c.result != "ok")
        if station is not None:
            stmt = stmt.where(table.c.station == station)
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                from dfuse.errors import UsageError

                raise UsageError(
                    f"limit must be at least 1 (or None: every record), got {limit!r}",
                    value=limit,
                    expected="at least 1",
                )
            stmt = stmt.order_by(table.c.id.desc()).limit(limit)
        else:
            stmt = stmt.order_by(table.c.id)
        try:
            with self._guard, self._engine.connect() as conn:
                rows = conn.execute(stmt).mappings().all()
        except Exception as exc:
            raise RecordStoreError(_reason(exc), url=self.url) from exc
        records = [_record(dict(row)) for row in rows]
        return sorted(records, key=lambda r: r.id or 0)


def _normalise_since(text: str) -> str:
    """``--since`` as a record time prefix to compare with (``2026-12-04`` →
    ``2026-12-04``; ``2026-12-04 05:00`` → ``2026-12-04T05:00``); a bad value raises."""
    value = text.strip().replace(" ", "T")
    try:
        parsed = datetime.fromisoformat(value.removesuffix("Z"))
    except ValueError as exc:
        from dfuse.errors import UsageError

        expected = "an ISO 8601 date or time, e.g. 2026-12-04 or 2026-12-04T05:00"
        raise UsageError(
            f"invalid --since time {text!r}: expected {expected}", value=text, expected=expected
        ) from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(row: Mapping[str, Any]) -> FlashRecord:
    return FlashRecord(
        time=row["time"],
        station=row["station"],
        serial=row["serial"],
        part=row["part"],
        image_name=row["image_name"],
        image_sha256=row["image_sha256"],
        result=row["result"],
        error=row["error"],
        error_type=row["error_type"],
        stamps=tuple(json.loads(row["stamps"])),
        path=row["path"],
        sectors_erased=row["sectors_erased"],
        bytes_written=row["bytes_written"],
        durations=json.loads(row["durations"]),
        duration=row["duration"],
        id=row["id"],
    )


def _reason(exc: BaseException) -> str:
    """The first line of a database error, without SQLAlchemy's background link."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first
