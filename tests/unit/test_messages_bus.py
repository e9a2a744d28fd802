"""Unit tests for workers.messages (versioned, validated messages) and workers.bus."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import pytest
from pydantic import ValidationError

from workers.bus import InProcessBus
from workers.messages import (
    Message,
    OriginalStored,
    RecordingCatalogued,
    RecordingSegmented,
    SegmentHashed,
    SegmentStored,
    decode,
    encode,
    topic_of,
)

SHA = "ab" * 32
REC = "rec-0123456789abcdef"

EXAMPLES: list[Message] = [
    OriginalStored(recording_id=REC, original_key=f"{REC}/original.mp4", sha256=SHA, size=1234),
    SegmentStored(
        recording_id=REC, index=3, key=f"{REC}/seg-00003.ts", sha256=SHA, start_s=30.0, end_s=40.0
    ),
    RecordingSegmented(recording_id=REC, count=7),
    SegmentHashed(recording_id=REC, index=0),
    RecordingCatalogued(recording_id=REC),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: m.type)
def test_encode_decode_round_trip(message: Message) -> None:
    data = encode(message)
    assert isinstance(data, bytes)
    decoded = decode(data)
    assert type(decoded) is type(message)
    assert decoded == message
    assert json.loads(data)["v"] == 1
    assert json.loads(data)["type"] == message.type


@pytest.mark.parametrize(
    ("message", "topic"),
    [
        (EXAMPLES[0], "vigil.original.stored"),
        (EXAMPLES[1], "vigil.segment.stored"),
        (EXAMPLES[2], "vigil.recording.segmented"),
        (EXAMPLES[3], "vigil.segment.hashed"),
        (EXAMPLES[4], "vigil.recording.catalogued"),
    ],
)
def test_topic_of(message: Message, topic: str) -> None:
    assert topic_of(message) == topic


def valid_segment() -> dict[str, object]:
    return json.loads(encode(EXAMPLES[1]))  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sha256": "AB" * 32}, "sha256"),  # upper case
        ({"sha256": "ab" * 31}, "sha256"),  # too short
        ({"sha256": "zz" * 32}, "sha256"),  # not hex
        ({"index": -1}, "index"),
        ({"type": "segment.deleted"}, "type"),
        ({"surprise": True}, "surprise"),
        ({"v": 2}, "v"),
        ({"recording_id": ""}, "recording_id"),
        ({"recording_id": "r" * 33}, "recording_id"),
        ({"start_s": "soon"}, "start_s"),
    ],
)
def test_decode_rejects_invalid_messages(change: dict[str, object], field: str) -> None:
    data = valid_segment() | change
    with pytest.raises(ValidationError) as info:
        decode(json.dumps(data).encode())
    assert field in str(info.value)


def test_decode_rejects_missing_field() -> None:
    data = valid_segment()
    del data["key"]
    with pytest.raises(ValidationError, match="key"):
        decode(json.dumps(data).encode())


def test_decode_rejects_negative_size_and_count() -> None:
    original = json.loads(encode(EXAMPLES[0])) | {"size": -1}
    with pytest.raises(ValidationError, match="size"):
        decode(json.dumps(original).encode())
    segmented = json.loads(encode(EXAMPLES[2])) | {"count": -5}
    with pytest.raises(ValidationError, match="count"):
        decode(json.dumps(segmented).encode())


def test_decode_rejects_non_json() -> None:
    with pytest.raises(ValidationError):
        decode(b"\x00not json")


def test_messages_are_frozen_and_validate_on_construction() -> None:
    hashed_example = EXAMPLES[3]
    assert isinstance(hashed_example, SegmentHashed)
    with pytest.raises(ValidationError):
        hashed_example.index = 5  # type: ignore[misc]
    with pytest.raises(ValidationError):
        SegmentHashed(recording_id=REC, index=-1)
    with pytest.raises(ValidationError):
        OriginalStored(recording_id=REC, original_key="k", sha256="not-a-hash", size=1)


# -- InProcessBus -----------------------------------------------------------------------------


def hashed(index: int, rec: str = REC) -> SegmentHashed:
    return SegmentHashed(recording_id=rec, index=index)


def recorder(into: list[object], label: object = None) -> Callable[[Message], Sequence[Message]]:
    """A handler that notes each call (the message, or ``label``) and emits nothing."""

    def handle(message: Message) -> Sequence[Message]:
        into.append(message if label is None else label)
        return []

    return handle


def test_bus_delivers_in_fifo_order() -> None:
    bus = InProcessBus()
    seen: list[int] = []

    def handler(message: Message) -> Sequence[Message]:
        assert isinstance(message, SegmentHashed)
        seen.append(message.index)
        return []

    bus.subscribe("vigil.segment.hashed", handler)
    for i in (4, 1, 3, 0, 2):
        bus.publish(hashed(i))
    assert bus.pending() == 5
    assert bus.drain() == 5
    assert seen == [4, 1, 3, 0, 2]
    assert bus.pending() == 0
    assert bus.delivered == 5


def test_bus_hands_handlers_a_decoded_copy() -> None:
    bus = InProcessBus()
    received: list[object] = []
    bus.subscribe("vigil.segment.hashed", recorder(received))
    sent = hashed(1)
    bus.publish(sent)
    bus.drain()
    assert received == [sent]
    assert received[0] is not sent  # went through the wire encoding


def test_bus_delivers_to_every_subscriber_of_the_topic_only() -> None:
    bus = InProcessBus()
    calls: list[object] = []
    bus.subscribe("vigil.segment.hashed", recorder(calls, "a"))
    bus.subscribe("vigil.segment.hashed", recorder(calls, "b"))
    bus.subscribe("vigil.recording.catalogued", recorder(calls, "other"))
    bus.publish(hashed(0))
    assert bus.drain() == 1
    assert calls == ["a", "b"]


def test_message_without_subscriber_is_consumed() -> None:
    bus = InProcessBus()
    bus.publish(RecordingCatalogued(recording_id=REC))
    assert bus.drain() == 1
    assert bus.pending() == 0


def test_emitted_messages_are_delivered_after_those_already_queued() -> None:
    bus = InProcessBus()
    order: list[object] = []

    def segmented(message: Message) -> Sequence[Message]:
        assert isinstance(message, RecordingSegmented)
        order.append(f"segmented {message.recording_id}")
        return [hashed(i, message.recording_id) for i in range(message.count)]

    def on_hashed(message: Message) -> Sequence[Message]:
        assert isinstance(message, SegmentHashed)
        order.append(f"hashed {message.recording_id} {message.index}")
        return (
            [RecordingCatalogued(recording_id=message.recording_id)] if message.index == 1 else []
        )

    bus.subscribe("vigil.recording.segmented", segmented)
    bus.subscribe("vigil.segment.hashed", on_hashed)
    bus.subscribe("vigil.recording.catalogued", recorder(order, "catalogued"))
    bus.publish(RecordingSegmented(recording_id="rec-a", count=2))
    bus.publish(RecordingSegmented(recording_id="rec-b", count=0))
    assert bus.drain() == 5
    assert order == [
        "segmented rec-a",
        "segmented rec-b",
        "hashed rec-a 0",
        "hashed rec-a 1",
        "catalogued",
    ]


def test_handler_exception_keeps_the_message_for_the_next_drain() -> None:
    bus = InProcessBus()
    seen: list[int] = []
    fail = {"armed": True}

    def flaky(message: Message) -> Sequence[Message]:
        assert isinstance(message, SegmentHashed)
        if message.index == 1 and fail["armed"]:
            fail["armed"] = False
            raise RuntimeError("database is locked")
        seen.append(message.index)
        return []

    bus.subscribe("vigil.segment.hashed", flaky)
    for i in range(3):
        bus.publish(hashed(i))
    with pytest.raises(RuntimeError, match="locked"):
        bus.drain()
    assert seen == [0]
    assert bus.pending() == 2  # the failed message is still first in line
    assert bus.drain() == 2
    assert seen == [0, 1, 2]
    assert bus.pending() == 0
