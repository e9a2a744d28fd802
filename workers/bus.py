"""Message bus boundary. The in-process bus runs every stage in this process, in order.

A handler takes one message and returns the messages it emits. The bus publishes them; the
same handlers run unchanged under Kafka consumers, one consumer group per stage.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from workers.messages import Message, decode, encode, topic_of

logger = logging.getLogger(__name__)

Handler = Callable[[Message], Sequence[Message]]


class Bus(Protocol):
    def subscribe(self, topic: str, handler: Handler) -> None: ...
    def publish(self, message: Message) -> None: ...


class InProcessBus:
    """A FIFO queue; ``drain()`` delivers until nothing is left.

    Messages go through the same JSON encoding and validation as on Kafka, so a handler
    never sees anything here that it would not see there.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = collections.defaultdict(list)
        self._queue: collections.deque[tuple[str, bytes]] = collections.deque()
        self.delivered = 0

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    def publish(self, message: Message) -> None:
        self._queue.append((topic_of(message), encode(message)))

    def pending(self) -> int:
        return len(self._queue)

    def drain(self) -> int:
        """Deliver every queued message (and what handlers emit); return how many."""
        count = 0
        while self._queue:
            topic, payload = self._queue.popleft()
            message = decode(payload)
            try:
                for handler in self._handlers.get(topic, []):
                    for emitted in handler(message):
                        self.publish(emitted)
            except Exception:
                self._queue.appendleft((topic, payload))  # kept: a later drain retries it
                raise
            count += 1
        self.delivered += count
        return count
