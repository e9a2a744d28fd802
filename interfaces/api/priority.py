"""People before devices' bulk work (``PeopleFirst``)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interfaces.api.background import Lane
from interfaces.api.deps import API

UPLOADS = f"{API}/uploads"


class PeopleFirst:
    """While any request other than a device upload's is being worked on, until its answer
    starts, the uploads' lane narrows (``Lane.others_in``): a reviewer's page, a supervisor's
    approval or an auditor's export goes ahead of the bulk of fifty devices' chunks. Nothing
    is refused and nothing waits for long: upload work already running goes on, and the rest
    starts as soon as the page's answer does (a long media stream holds nothing back once its
    headers are out). A plain ASGI middleware, as ``SecurityHeaders``."""

    def __init__(self, app: ASGIApp, lane: Lane) -> None:
        self.app = app
        self.lane = lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UPLOADS):
            await self.app(scope, receive, send)
            return
        lane = self.lane
        lane.others_in()
        waiting = True

        async def answer(message: Message) -> None:
            nonlocal waiting
            if waiting and message["type"] == "http.response.start":
                waiting = False
                lane.others_out()
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            if waiting:
                lane.others_out()
