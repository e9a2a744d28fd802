"""People before devices' bulk work: while a request other than an upload's is being worked on,
until its answer starts, the uploads' lane starts fewer of its tasks (``PeopleFirst``,
``Lane.others_in``)."""

from __future__ import annotations

import threading
import time

import anyio
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interfaces.api.background import Lane
from interfaces.api.priority import PeopleFirst


async def _nothing() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _drop(_message: Message) -> None:
    return None


def _recording_app(lane: Lane, seen: list[int]) -> ASGIApp:
    async def app(_scope: Scope, _receive: Receive, send: Send) -> None:
        seen.append(lane.limit)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        seen.append(lane.limit)
        await send({"type": "http.response.body", "body": b"ok"})

    return app


@pytest.mark.parametrize(
    ("path", "limits"),
    [
        ("/api/v1/cases", [1, 4]),  # narrowed until the answer starts
        ("/api/v1/uploads/abc", [4, 4]),  # a device's upload: not narrowed
        ("/", [1, 4]),  # the review pages too
    ],
)
def test_the_lane_narrows_until_a_persons_answer_starts(path: str, limits: list[int]) -> None:
    async def main() -> list[int]:
        lane = Lane(4, yielding=1)
        seen: list[int] = []
        middleware = PeopleFirst(_recording_app(lane, seen), lane)
        await middleware({"type": "http", "path": path}, _nothing, _drop)
        seen.append(lane.limit)
        return seen

    assert anyio.run(main) == [*limits, 4]


def test_the_lane_widens_only_when_every_person_has_an_answer() -> None:
    async def main() -> list[int]:
        lane = Lane(4, yielding=1)
        limits: list[int] = []
        go_on = anyio.Event()

        async def slow(_scope: Scope, _receive: Receive, send: Send) -> None:
            await go_on.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})

        async def quick(_scope: Scope, _receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})

        scope: Scope = {"type": "http", "path": "/api/v1/cases"}
        async with anyio.create_task_group() as tg:
            tg.start_soon(PeopleFirst(slow, lane), scope, _nothing, _drop)
            await anyio.sleep(0.01)
            await PeopleFirst(quick, lane)(scope, _nothing, _drop)
            limits.append(lane.limit)  # the slow one has no answer yet
            go_on.set()
        limits.append(lane.limit)
        return limits

    assert anyio.run(main) == [1, 4]


def test_a_request_that_fails_before_answering_widens_the_lane_again() -> None:
    async def main() -> int:
        lane = Lane(4, yielding=1)

        async def broken(_scope: Scope, _receive: Receive, _send: Send) -> None:
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await PeopleFirst(broken, lane)({"type": "http", "path": "/x"}, _nothing, _drop)
        return lane.limit

    assert anyio.run(main) == 4


def test_a_narrowed_lane_holds_back_work_until_it_widens() -> None:
    """Two upload tasks while a person waits: one runs, the other starts only once the
    person's answer has started."""

    async def main() -> list[str]:
        lane = Lane(2, yielding=1)
        order: list[str] = []
        release = threading.Event()

        def work(name: str) -> None:
            order.append(f"{name} started")
            release.wait(10)

        lane.others_in()
        async with anyio.create_task_group() as tg:
            tg.start_soon(lane.run, lambda: work("a"))
            tg.start_soon(lane.run, lambda: work("b"))
            await anyio.sleep(0.3)
            order.append("person answered")
            lane.others_out()
            await anyio.sleep(0.3)
            release.set()
        return order

    started = time.monotonic()
    order = anyio.run(main)
    assert order[:2] == ["a started", "person answered"] or order[:2] == [
        "b started",
        "person answered",
    ]
    assert len(order) == 3 and order[2].endswith("started")
    assert time.monotonic() - started < 5
