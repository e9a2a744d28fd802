"""Messages between stages: versioned, validated, and free of video bytes (keys and hashes only).

Each message type has its own topic. Under Kafka a message is keyed by ``recording_id`` so that
one recording's messages stay in order; the in-process bus keeps the same order.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SHA256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    v: Literal[1] = 1
    recording_id: str = Field(min_length=1, max_length=32)


class OriginalStored(_Message):
    """The original is in the store, byte-exact and hashed, and catalogued."""

    type: Literal["original.stored"] = "original.stored"
    original_key: str
    sha256: SHA256
    size: int = Field(ge=0)


class SegmentStored(_Message):
    """One segment is stored, SHA-256 hashed, chained and catalogued."""

    type: Literal["segment.stored"] = "segment.stored"
    index: int = Field(ge=0)
    key: str
    sha256: SHA256
    start_s: float
    end_s: float


class RecordingSegmented(_Message):
    """Every segment of the recording is stored; ``count`` of them."""

    type: Literal["recording.segmented"] = "recording.segmented"
    count: int = Field(ge=0)


class SegmentHashed(_Message):
    """A segment's per-frame perceptual hashes are catalogued."""

    type: Literal["segment.hashed"] = "segment.hashed"
    index: int = Field(ge=0)


class ProxyStored(_Message):
    """The review proxy of a recording whose segments a browser cannot play is stored and
    catalogued (``count`` files)."""

    type: Literal["proxy.stored"] = "proxy.stored"
    count: int = Field(ge=0)


class RecordingCatalogued(_Message):
    """The recording is fully processed: segments, hashes, continuity."""

    type: Literal["recording.catalogued"] = "recording.catalogued"


Message = Annotated[
    OriginalStored
    | SegmentStored
    | RecordingSegmented
    | SegmentHashed
    | ProxyStored
    | RecordingCatalogued,
    Field(discriminator="type"),
]
MESSAGE_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)


MESSAGE_TYPES = (
    "original.stored",
    "segment.stored",
    "recording.segmented",
    "segment.hashed",
    "proxy.stored",
    "recording.catalogued",
)
DEFAULT_PREFIX = "vigil"


def topic_for(message_type: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}.{message_type}"


def topic_of(message: Message, prefix: str = DEFAULT_PREFIX) -> str:
    return topic_for(message.type, prefix)


def encode(message: Message) -> bytes:
    return message.model_dump_json().encode()


def decode(data: bytes) -> Message:
    """Parse and validate; raises pydantic.ValidationError naming the bad field."""
    return MESSAGE_ADAPTER.validate_json(data)
