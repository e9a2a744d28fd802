"""Catalogue tables. The schema itself is created by the Alembic migrations beside this file."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from vigil_verify.packets import PacketRange, SourceBytes, ranges_digest


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the catalogue; use UTC-aware values")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), default="body-camera")
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    # On duty (the roster says so): a device in service that goes silent is worth an alert.
    in_service: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class Officer(Base):
    __tablename__ = "officers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit: Mapped[str | None] = mapped_column(String(64))


class Recording(Base):
    __tablename__ = "recordings"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    original_key: Mapped[str] = mapped_column(String(255))
    original_name: Mapped[str] = mapped_column(String(255))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    officer_id: Mapped[str | None] = mapped_column(ForeignKey("officers.id"), index=True)
    category: Mapped[str | None] = mapped_column(String(64))
    device_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    device_clock_at_handover: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    clock_offset_s: Mapped[float | None] = mapped_column(Float)
    gps_track: Mapped[str | None] = mapped_column(Text)  # JSON array of fixes, as received
    status: Mapped[str] = mapped_column(String(16), default="stored")
    damage: Mapped[str | None] = mapped_column(Text)
    container: Mapped[str | None] = mapped_column(String(64))
    video_codec: Mapped[str | None] = mapped_column(String(32))
    audio_codec: Mapped[str | None] = mapped_column(String(32))
    audio_tracks: Mapped[int | None] = mapped_column(Integer)  # audio streams in the segments
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    fps: Mapped[float | None] = mapped_column(Float)
    # clockwise degrees (0/90/180/270) that turn the stored pixels upright (the original's
    # display matrix, which stream-copied segments lose); None: probed before 0008, or no video
    rotation: Mapped[int | None] = mapped_column(Integer)
    # the subtitle, data and timecode tracks and where each is kept (``catalog.tracks``: a JSON
    # array, as signed in the ``segment`` event); None: segmented before 0009, or a live stream
    extra_tracks: Mapped[str | None] = mapped_column(Text)
    frame_hold_s: Mapped[float | None] = mapped_column(Float)  # longest normal frame interval
    origin_s: Mapped[float | None] = mapped_column(Float)  # source pts of the timeline's zero
    duration_s: Mapped[float | None] = mapped_column(Float)
    # "copy": the evidence segments play in a browser; "proxy": a review proxy is made for
    # playback; "transcode": (before 0006) the segments themselves were transcoded
    playback: Mapped[str | None] = mapped_column(String(16))
    segment_count: Mapped[int | None] = mapped_column(Integer)
    chain_anchor: Mapped[str | None] = mapped_column(String(64))  # live streams; else sha256
    chain_head: Mapped[str | None] = mapped_column(String(64))
    playlist_key: Mapped[str | None] = mapped_column(String(255))
    playlist_sha256: Mapped[str | None] = mapped_column(String(64))
    phash_fps: Mapped[float | None] = mapped_column(Float)
    proxy_playlist_key: Mapped[str | None] = mapped_column(String(255))
    proxy_playlist_sha256: Mapped[str | None] = mapped_column(String(64))

    @property
    def anchor(self) -> str:
        """What the segment hash chain starts from: the original's SHA-256 for a file; for a
        live stream, whose original is complete only when it ends, an anchor fixed when
        recording began."""
        return self.chain_anchor or self.sha256


class Segment(Base):
    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("recording_id", "index", name="uq_segment_position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # "copy" or "transcode"
    start_s: Mapped[float] = mapped_column(Float)  # on the recording timeline (0 = first frame)
    end_s: Mapped[float] = mapped_column(Float)
    frame_count: Mapped[int] = mapped_column(Integer)
    holes: Mapped[str | None] = mapped_column(Text)  # JSON [[start, end], ...]: gaps inside it
    chain: Mapped[str] = mapped_column(String(64))
    phash: Mapped[bytes | None] = mapped_column(LargeBinary)
    phash_digest: Mapped[str | None] = mapped_column(String(64))
    phash_frames: Mapped[int | None] = mapped_column(Integer)
    # the ``vigil_verify.audio_tracks`` blob: every audio track's fingerprint (None: not yet,
    # or hashed before audio was); its SHA-256 is in the signed ``segment.hashed`` event
    audio: Mapped[bytes | None] = mapped_column(LargeBinary)
    keyframes: Mapped[str | None] = mapped_column(Text)  # JSON [{t, pdq, quality}, ...]
    # JSON [{stream, codec, first, count, sha256}, ...]: its packets in the original, as its
    # ``segment.stored`` event signs them (None: logged before issue 18, or not known)
    packets: Mapped[str | None] = mapped_column(Text)
    # False: no copy is stored; the file is cut again from the original when wanted, checked
    # against ``sha256`` (``integrity.segment_files``, issue 18)
    kept: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # JSON {offset, size, sha256, shift_s}: a live segment's bytes in the original, as its
    # ``segment.stored`` event signs them (None: cut from the original, or logged before)
    source: Mapped[str | None] = mapped_column(Text)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verify_status: Mapped[str | None] = mapped_column(String(32))

    @property
    def packet_ranges(self) -> tuple[PacketRange, ...]:
        """Its packet ranges as this row has them (the signed ones are in the log)."""
        if not self.packets:
            return ()
        return tuple(PacketRange(**item) for item in json.loads(self.packets))

    @property
    def packets_digest(self) -> str | None:
        """What its chain link covers of its packet ranges, by this row (None: none; a value
        that cannot be read is named as such, never raised: rows are not trusted)."""
        try:
            ranges = self.packet_ranges
        except (ValueError, TypeError, KeyError):
            return "unreadable"
        return ranges_digest(ranges) if ranges else None

    @property
    def source_bytes(self) -> SourceBytes | None:
        """Its bytes in the original as this row has them (the signed ones are in the log)."""
        return SourceBytes(**json.loads(self.source)) if self.source else None

    @property
    def source_shown(self) -> str | None:
        """Its bytes in the original, as the rows check compares them (a value that cannot
        be read is named as such, never raised: rows are not trusted)."""
        try:
            return shown_source(self.source_bytes)
        except (ValueError, TypeError, KeyError):
            return "unreadable"


class ProxySegment(Base):
    """One file of a recording's review proxy: for viewing only, never evidence; hashed and
    linked to the original it was made from by the ``proxy.stored`` custody event."""

    __tablename__ = "proxy_segments"
    __table_args__ = (UniqueConstraint("recording_id", "index", name="uq_proxy_position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    start_s: Mapped[float] = mapped_column(Float)  # on the recording timeline
    end_s: Mapped[float] = mapped_column(Float)


class Case(Base):
    __tablename__ = "cases"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CaseLink(Base):
    __tablename__ = "case_links"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"), index=True)
    from_s: Mapped[float | None] = mapped_column(Float)  # None: from the start
    to_s: Mapped[float | None] = mapped_column(Float)  # None: to the end
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    unlinked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CustodyEvent(Base):
    """Append-only: the migration installs triggers that refuse UPDATE and DELETE."""

    __tablename__ = "custody_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32), index=True)
    recording_id: Mapped[str | None] = mapped_column(String(32), index=True)
    case_id: Mapped[str | None] = mapped_column(String(64), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)  # JSON of a typed model, see catalog.events


class LedgerLeaf(Base):
    """The custody ledger's order: event ``event_id`` is leaf ``position`` of the Merkle log.

    Append-only like the events (the migration installs the same triggers). ``leaf_hash`` is
    RFC 6962's SHA-256(0x00 ‖ canonical event bytes), kept so the tree loads without
    re-encoding every event; ``vigil ledger check`` recomputes it from the event row.
    """

    __tablename__ = "ledger_leaves"
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[int] = mapped_column(ForeignKey("custody_events.id"), unique=True)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    sequenced_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TreeHeadRecord(Base):
    """A signed checkpoint of the ledger (append-only); the same note is in the WORM store."""

    __tablename__ = "tree_heads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    size: Mapped[int] = mapped_column(BigInteger, index=True)
    root: Mapped[str] = mapped_column(String(64))  # hex
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of the raw public key
    note: Mapped[str] = mapped_column(Text)  # the signed note (C2SP tlog-checkpoint)
    object_key: Mapped[str] = mapped_column(String(255))
    timestamp_token: Mapped[bytes | None] = mapped_column(LargeBinary)  # RFC 3161, DER


class IncidentRecord(Base):
    """An expected recording: a dispatch or incident an officer attended (imported from the
    dispatch system), reconciled against the footage by ``catalog.stats.reconcile``. No
    foreign key to ``officers``: a dispatch may name an officer with no footage at all."""

    __tablename__ = "incidents"
    incident_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    officer_id: Mapped[str] = mapped_column(String(64), index=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Principal(Base):
    """Someone or something that calls the API: a person with a role, or a device."""

    __tablename__ = "principals"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(
        String(16)
    )  # device officer reviewer supervisor auditor admin
    display_name: Mapped[str] = mapped_column(String(128))
    device_id: Mapped[str | None] = mapped_column(String(64))  # role "device": which one
    officer_id: Mapped[str | None] = mapped_column(String(64))  # role "officer": which one
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """A bearer token, stored only as its SHA-256 (tokens are 256-bit random, not passwords)."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CaseAssignment(Base):
    """A reviewer assigned to a case: what they may see."""

    __tablename__ = "case_assignments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id"), index=True)
    assigned_by: Mapped[str] = mapped_column(String(64))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExportRequest(Base):
    """An export asked for with a reason; a supervisor approves it before anything is copied."""

    __tablename__ = "export_requests"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))  # pending approved denied ready failed
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(Text)
    package_sha256: Mapped[str | None] = mapped_column(String(64))
    package_size: Mapped[int | None] = mapped_column(BigInteger)
    # clips with Content Credentials asked for (``vigil export --clip``); None: before 0010
    clips: Mapped[bool | None] = mapped_column(Boolean)


class Upload(Base):
    """A resumable device upload: bytes confirmed so far, and what the device said about it."""

    __tablename__ = "uploads"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id"), index=True)
    metadata_json: Mapped[str] = mapped_column(Text)  # RecordingMetadata, as received
    size: Mapped[int] = mapped_column(BigInteger)  # declared total
    offset: Mapped[int] = mapped_column(BigInteger)  # bytes confirmed (fsynced)
    chunks: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)  # server time at handover
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))  # open complete failed
    recording_id: Mapped[str | None] = mapped_column(String(32))
    sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)


def shown_source(source: SourceBytes | None) -> str | None:
    """A segment's bytes in the original in one comparable line (None: none)."""
    if source is None:
        return None
    return f"{source.offset}+{source.size} sha256 {source.sha256} shift {source.shift_s:.6f}"
