"""The record store on SQLite (and the parts that are the same on PostgreSQL)."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.errors import RecordStoreError, UsageError
from dfuse.station.store import SCHEMA_VERSION, FlashRecord, RecordStore, default_store_path

RECORD = FlashRecord(
    time="2026-12-04T05:00:00.000000Z",
    station="line-1",
    serial="A1",
    part="STM32F4 512K",
    image_name="fw.dfu",
    image_sha256="ab" * 32,
    result="ok",
    stamps=({"address": 0x08004000, "spec": "counter:1:4", "value": 7},),
    path="1-1",
    sectors_erased=2,
    bytes_written=16388,
    durations={"erase": 0.5, "write": 0.25},
    duration=0.9,
)


def test_default_path_is_in_the_users_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("DFUSE_LOG", raising=False)
    assert default_store_path() == tmp_path / "data" / "dfuse" / "records.sqlite"
    with RecordStore.open() as store:
        store.add(RECORD)
    assert (tmp_path / "data" / "dfuse" / "records.sqlite").is_file()
    monkeypatch.setenv("DFUSE_LOG", str(tmp_path / "other.sqlite"))
    with RecordStore.open() as store:
        assert store.url == str(tmp_path / "other.sqlite")


def test_records_round_trip_and_filter(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    with RecordStore.open(path) as store:
        first = store.add(RECORD)
        store.add(replace(RECORD, serial="B2", time="2026-12-04T06:00:00.000000Z"))
        store.add(
            replace(
                RECORD,
                serial="A1",
                time="2026-12-04T07:00:00.000000Z",
                result="failed",
                error="gone",
                error_type="DeviceGoneError",
            )
        )
    with RecordStore.open(f"sqlite:///{path}") as store:
        assert store.schema_version == SCHEMA_VERSION
        records = store.query()
        assert [r.id for r in records] == [first, first + 1, first + 2]
        assert replace(records[0], id=None) == RECORD
        assert [r.serial for r in store.query(serial="A1")] == ["A1", "A1"]
        assert [r.time[:13] for r in store.query(since="2026-12-04T06:00")] == [
            "2026-12-04T06",
            "2026-12-04T07",
        ]
        assert [r.serial for r in store.query(since="2026-12-04 07:00+00:00")] == ["A1"]
        assert [r.error_type for r in store.query(failed=True)] == ["DeviceGoneError"]
        assert [r.serial for r in store.query(limit=2)] == ["B2", "A1"]
        assert store.query(station="elsewhere") == []
        with pytest.raises(UsageError, match="since"):
            store.query(since="yesterday")
        d = records[0].to_dict()
        assert d["stamps"] == [{"address": 0x08004000, "spec": "counter:1:4", "value": 7}]
        assert {"time", "station", "serial", "part", "image_sha256", "result", "error"} <= set(d)


def test_counters_start_count_and_reuse_released_numbers(tmp_path: Path) -> None:
    with RecordStore.open(tmp_path / "c.sqlite") as store:
        assert [store.allocate("a", start=100) for _ in range(3)] == [100, 101, 102]
        assert store.allocate("b") == 1  # sequences are independent
        # a failed board gives its number back with its record, atomically
        store.add(replace(RECORD, result="failed", error="x"), release=[("a", 101)])
        store.release("a", [100])
        assert store.allocate("a", start=100) == 100  # the smallest free number first
        assert store.allocate("a", start=100) == 101
        assert store.allocate("a", start=100) == 103


def test_counters_are_unique_across_threads(tmp_path: Path) -> None:
    with RecordStore.open(tmp_path / "t.sqlite") as store:
        got: list[int] = []
        lock = threading.Lock()

        def take() -> None:
            for _ in range(20):
                n = store.allocate("k")
                with lock:
                    got.append(n)

        threads = [threading.Thread(target=take) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got) == list(range(1, 81))


def _allocate_in_process(path: str, n: int, queue: multiprocessing.Queue[list[int]]) -> None:
    with RecordStore.open(path) as store:
        queue.put([store.allocate("shared") for _ in range(n)])


def test_counters_are_unique_across_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "p.sqlite")
    RecordStore.open(path).close()
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[list[int]] = ctx.Queue()
    procs = [ctx.Process(target=_allocate_in_process, args=(path, 15, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    values = [v for _ in procs for v in queue.get(timeout=60)]
    for p in procs:
        p.join(30)
    assert sorted(values) == list(range(1, 46))


def test_read_only_store_is_refused_on_open(tmp_path: Path) -> None:
    path = tmp_path / "ro.sqlite"
    RecordStore.open(path).close()
    with pytest.raises(RecordStoreError, match=r"readonly|read-only|read only") as info:
        RecordStore.open(f"sqlite:///file:{path}?mode=ro&uri=true")
    assert str(path) in info.value.url


def test_unusable_locations_are_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RecordStoreError, match="directory"):
        RecordStore.open(blocker / "sub" / "log.sqlite")
    with pytest.raises(RecordStoreError, match="scheme"):
        RecordStore.open("mysql://u@h/db")
    not_a_db = tmp_path / "text.sqlite"
    not_a_db.write_text("hello, this is not a database" * 100)
    with pytest.raises(RecordStoreError, match="not a database"):
        RecordStore.open(not_a_db)


def test_unreachable_postgres_is_refused_with_the_password_hidden() -> None:
    with pytest.raises(RecordStoreError) as info:
        RecordStore.open("postgresql://u:secret@127.0.0.1:9/db?connect_timeout=2")
    assert "secret" not in str(info.value)
    assert info.value.url.startswith("postgresql://u:***@127.0.0.1:9/db")


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    RecordStore.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE dfuse_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(RecordStoreError, match="schema version 99"):
        RecordStore.open(path)


def test_postgres_store_allocates_under_row_locks(pg_url: str) -> None:
    with RecordStore.open(pg_url) as store:
        assert store.dialect == "postgresql"
        got: list[int] = []
        lock = threading.Lock()

        def take() -> None:
            for _ in range(10):
                n = store.allocate("pg", start=1000)
                with lock:
                    got.append(n)

        threads = [threading.Thread(target=take) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got) == list(range(1000, 1040))
        store.add(replace(RECORD, result="failed", error="x"), release=[("pg", 1003)])
        assert store.allocate("pg", start=1000) == 1003
        store.add(RECORD)
        assert [r.serial for r in store.query(failed=True)] == ["A1"]
        assert store.query()[-1].stamps == RECORD.stamps


def test_postgres_read_only_is_refused(pg_url: str, pg_cluster: object) -> None:
    RecordStore.open(pg_url).close()
    from tests.station.conftest import PgCluster

    assert isinstance(pg_cluster, PgCluster)
    name = pg_url.rsplit("/", 1)[1]
    pg_cluster.execute(pg_url, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    with pytest.raises(RecordStoreError, match="read-only"):
        RecordStore.open(pg_url)


def test_an_older_schema_is_migrated_on_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    from dfuse.station import store as store_module

    path = tmp_path / "old.sqlite"
    with RecordStore.open(path) as store:
        store.add(RECORD)
    calls: list[int] = []

    def to_next(conn: sa.Connection, _schema: object) -> None:
        calls.append(SCHEMA_VERSION)
        conn.execute(sa.text("CREATE INDEX ix_station_time ON dfuse_flash_records (station, time)"))

    monkeypatch.setattr(store_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(store_module.MIGRATIONS, SCHEMA_VERSION, to_next)
    with RecordStore.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION + 1
        assert [r.serial for r in store.query()] == ["A1"]  # the records are kept
    with RecordStore.open(path) as store:  # already migrated: not again
        assert store.schema_version == SCHEMA_VERSION + 1
    assert calls == [SCHEMA_VERSION]
    with sqlite3.connect(path) as conn:
        names = {row[1] for row in conn.execute("PRAGMA index_list(dfuse_flash_records)")}
    assert "ix_station_time" in names


_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40
)


@settings(max_examples=40, deadline=None)
@given(
    serial=st.none() | _text,
    error=st.none() | _text,
    stamps=st.lists(
        st.fixed_dictionaries(
            {
                "address": st.integers(0, 0xFFFF_FFFF),
                "spec": st.sampled_from(["serial", "uid", "counter:1:4", "sha256", "time"]),
                "value": st.integers(0, 2**63 - 1) | _text,
            }
        ),
        max_size=5,
    ),
    durations=st.dictionaries(
        st.sampled_from(["open", "erase", "write", "verify", "leave"]),
        st.floats(0, 1e6, allow_nan=False).map(lambda x: round(x, 6)),
    ),
)
def test_any_record_round_trips(
    serial: str | None,
    error: str | None,
    stamps: list[dict[str, object]],
    durations: dict[str, float],
) -> None:
    record = replace(
        RECORD,
        serial=serial,
        error=error,
        stamps=tuple(stamps),
        durations=durations,
        result="ok" if error is None else "failed",
    )
    with RecordStore.open(":memory:") as store:
        record_id = store.add(record)
        [back] = store.query()
    assert back == replace(record, id=record_id)


@pytest.mark.parametrize("limit", [0, -1, True, 1.5])
def test_a_bad_limit_is_refused_with_the_value(limit: object) -> None:
    from dfuse.errors import UsageError

    store = RecordStore.open(":memory:")
    with pytest.raises(UsageError, match="limit must be at least 1") as info:
        store.query(limit=limit)  # type: ignore[arg-type]
    assert info.value.value is limit


@pytest.mark.parametrize("count", [0, -3])
def test_a_station_refuses_a_bad_count(count: int) -> None:
    from dfuse.errors import UsageError
    from dfuse.selector import bench
    from dfuse.station import Station

    station = Station(b"\x00" * 16, bench("sim:stm32f411"), address=0x08000000)
    with pytest.raises(UsageError, match=f"got {count}") as info:
        station.run(count=count)
    assert info.value.value == count
