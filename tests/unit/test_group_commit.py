"""Group commit (catalog.group_commit): many threads' writes share a transaction, each caller
answered only after its own write is committed, nothing lost, repeated or reordered."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import select

from catalog.db import make_engine
from catalog.group_commit import GroupCommit
from catalog.models import CustodyEvent
from catalog.repository import Catalog, Event


class SlowStore:
    """A store whose commit takes a while (an fsync), recording each batch."""

    def __init__(self, commit_s: float = 0.01, fail_on: str | None = None) -> None:
        self.commit_s = commit_s
        self.fail_on = fail_on
        self.batches: list[list[str]] = []
        self.committed: set[str] = set()
        self._lock = threading.Lock()

    def write(self, items: Sequence[str]) -> None:
        time.sleep(self.commit_s)
        if self.fail_on in items:
            raise OSError(f"disk full while writing {self.fail_on}")
        with self._lock:
            self.batches.append(list(items))
            self.committed.update(items)


def test_many_threads_share_commits_and_each_write_is_committed_before_its_caller_goes_on() -> None:
    store = SlowStore()
    group = GroupCommit[str](store.write)
    seen_after: list[bool] = []

    def caller(n: int) -> None:
        for k in range(10):
            item = f"{n}-{k}"
            group.add(item)
            seen_after.append(item in store.committed)

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(caller, range(20)))
    written = [item for batch in store.batches for item in batch]
    assert sorted(written) == sorted(f"{n}-{k}" for n in range(20) for k in range(10))
    assert len(written) == len(set(written))  # none twice
    assert all(seen_after)  # nobody answered before its write was committed
    assert len(store.batches) < 200 / 4  # shared: 200 writes in far fewer commits
    for n in range(20):  # each thread's writes in the order it made them
        mine = [item for item in written if item.startswith(f"{n}-")]
        assert mine == [f"{n}-{k}" for k in range(10)]


def test_a_failed_batch_is_reported_to_each_of_its_callers_and_the_next_write_goes_on() -> None:
    store = SlowStore(commit_s=0.05, fail_on="bad")
    group = GroupCommit[str](store.write)
    outcomes: dict[str, str] = {}

    def caller(item: str) -> None:
        try:
            group.add(item)
            outcomes[item] = "ok"
        except OSError as exc:
            outcomes[item] = str(exc)

    first = threading.Thread(target=caller, args=("first",))
    first.start()
    time.sleep(0.01)  # "first" is being written; the next two wait and go in together
    rest = [threading.Thread(target=caller, args=(item,)) for item in ("bad", "beside-bad")]
    for t in rest:
        t.start()
    for t in [first, *rest]:
        t.join()
    assert outcomes == {
        "first": "ok",
        "bad": "disk full while writing bad",
        "beside-bad": "disk full while writing bad",  # in the failed batch: not committed
    }
    assert "beside-bad" not in store.committed
    group.add("after")
    assert "after" in store.committed


def test_the_catalogues_events_from_many_threads_are_all_in_once(tmp_path: Path) -> None:
    catalog = Catalog(make_engine(f"sqlite:///{tmp_path / 'c.db'}"))
    catalog.migrate()

    def view(n: int) -> None:
        for k in range(5):
            catalog.add_event(Event("view", f"reviewer-{n}", reason=f"page {k}"))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(view, range(16)))
    with catalog.session() as session:
        rows = list(session.scalars(select(CustodyEvent).where(CustodyEvent.action == "view")))
    assert sorted((r.actor, r.reason) for r in rows) == sorted(
        (f"reviewer-{n}", f"page {k}") for n in range(16) for k in range(5)
    )
