"""SQLite backend: one file shared by worker processes, kept across restarts, pruned lazily."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from apex_ai_proxy.state.responses_store import StoredResponse
from apex_ai_proxy.state.sqlite_responses import PRUNE_BATCH, SQLiteResponseStore


def record(response_id: str, text: str = "hi", previous: str | None = None) -> StoredResponse:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    return StoredResponse(
        id=response_id,
        created_at=1_760_000_000,
        model="m",
        input_items=[item],
        instructions=None,
        response={"id": response_id, "object": "response", "output": []},
        output_items=[],
        previous_response_id=previous,
    )


async def open_store(path: Path, ttl: float = 60.0, prune_every: float = 3600.0):
    return await SQLiteResponseStore.open(path, ttl_seconds=ttl, prune_interval_seconds=prune_every)


def row_count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM responses").fetchone()[0]


async def test_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    worker_a, worker_b = await open_store(path), await open_store(path)
    try:
        await worker_a.put("resp_a", record("resp_a", "from a"))
        await worker_b.put("resp_b", record("resp_b", "from b", previous="resp_a"))
        assert await worker_b.get("resp_a") == record("resp_a", "from a")
        assert [r.id for r in await worker_a.conversation("resp_b", owner=None)] == [
            "resp_a",
            "resp_b",
        ]
        assert await worker_b.delete("resp_a") is True
        assert await worker_a.get("resp_a") is None
    finally:
        await worker_a.close()
        await worker_b.close()


async def test_data_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "responses.db"  # parent folders are created
    before = await open_store(path)
    await before.put("resp_1", record("resp_1", "kept"))
    await before.close()

    after = await open_store(path)
    try:
        assert await after.get("resp_1") == record("resp_1", "kept")
    finally:
        await after.close()


async def test_file_is_in_wal_mode(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "r.db")
    await store.close()
    with sqlite3.connect(tmp_path / "r.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from apex_ai_proxy.state.responses_store import StoredResponse
    from apex_ai_proxy.state.sqlite_responses import SQLiteResponseStore

    async def main(path, worker):
        store = await SQLiteResponseStore.open(path, ttl_seconds=60, prune_interval_seconds=60)
        for n in range(150):
            rid = f"resp_{worker}_{n}"
            await store.put(rid, StoredResponse(
                id=rid, created_at=0, model="m", input_items=[], instructions=None,
                response={}, output_items=[{"type": "message", "n": n}]))
        await store.close()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


async def test_concurrent_writer_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "multi.db"
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", WRITER, str(path), str(w), env=env, stderr=subprocess.PIPE
        )
        for w in range(4)
    ]
    results = await asyncio.gather(*(w.communicate() for w in workers))
    for worker, (_, stderr) in zip(workers, results, strict=True):
        assert worker.returncode == 0, stderr.decode()

    store = await open_store(path)
    try:
        for w in range(4):
            for n in (0, 77, 149):
                stored = await store.get(f"resp_{w}_{n}")
                assert stored is not None and stored.output_items[0]["n"] == n
    finally:
        await store.close()
    assert row_count(path) == 600


async def test_expired_rows_stay_on_disk_until_pruned(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    store = await open_store(path, ttl=0.2, prune_every=3600)
    try:
        await store.put("resp_old", record("resp_old"))  # first put: prune runs (nothing to do)
        await asyncio.sleep(0.3)
        assert await store.get("resp_old") is None
        await store.put("resp_new", record("resp_new"))  # within the interval: no prune
        await store.get("resp_new")  # runs after anything the put queued
        assert row_count(path) == 2

        assert await store.prune() == 1
        assert row_count(path) == 1
        assert await store.get("resp_new") is not None
    finally:
        await store.close()


async def test_put_after_the_interval_prunes_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    store = await open_store(path, ttl=0.2, prune_every=0.2)
    try:
        await store.put("resp_old", record("resp_old"))
        await asyncio.sleep(0.3)
        await store.put("resp_new", record("resp_new"))
        await store.get("resp_new")  # the prune job was queued before this one
        assert row_count(path) == 1
    finally:
        await store.close()


async def test_prune_deletes_more_than_one_batch(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    store = await open_store(path)
    try:
        with sqlite3.connect(path) as conn:
            conn.executemany(
                "INSERT INTO responses (id, expires_at, data) VALUES (?, 1.0, x'00')",
                [(f"resp_{n}",) for n in range(PRUNE_BATCH * 2 + 5)],
            )
        await store.put("resp_live", record("resp_live"))
        # The put started a background prune; wait until its chained batches are done.
        for _ in range(100):
            if row_count(path) == 1:
                break
            await asyncio.sleep(0.02)
        assert row_count(path) == 1
        assert await store.prune() == 0
    finally:
        await store.close()


async def test_sqlite_runs_off_the_event_loop_thread(tmp_path: Path) -> None:
    # sqlite3 refuses a connection from any thread but its creator's (check_same_thread), so
    # if the store works and the loop's thread is refused, every call ran on the store thread.
    store = await open_store(tmp_path / "r.db")
    try:
        await store.put("resp_1", record("resp_1"))
        assert await store.get("resp_1") is not None
        with pytest.raises(sqlite3.ProgrammingError, match="same thread"):
            store._connection().execute("SELECT 1")
    finally:
        await store.close()


async def test_an_unusable_path_fails_at_open_not_at_first_request(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(OSError):
        await open_store(tmp_path / "a-file" / "r.db")
