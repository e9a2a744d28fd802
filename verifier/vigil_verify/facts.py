"""What proved custody events establish about a case's footage: the *signed facts* the footage
check trusts (an original's hash, each segment's hash, times, chain link and perceptual hashes,
the case's linked windows), read from each event's JSON.

Events are read from a package, so every value is checked: its type, a hash for being 64
lowercase hex digits, a time for being finite and within ``MAX_SECONDS``, a rate for its range, a
segment index or count for being at most ``MAX_SEGMENTS``, a recording ID for the ID grammar
(it names a folder). A value that is not what it must be raises ``ValueError`` (or ``KeyError``
for a missing field) naming it, which the caller reports as malformed. The server reads its own
log with the same code (``integrity.logfacts``), so both sides interpret the log alike. Needs
the standard library and ``cryptography`` (through ``vigil_verify.checkpoint``) only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace

from vigil_verify.checkpoint import Checkpoint
from vigil_verify.names import is_id, shown
from vigil_verify.packets import PacketRange, SourceBytes, ranges_digest
from vigil_verify.sampling import SAMPLING_FRAMES

__all__ = [
    "MAX_SEGMENTS",
    "LedgerCheck",
    "SignedEvent",
    "SignedRecording",
    "SignedRecovery",
    "SignedSegment",
    "apply_event",
    "parse_entry",
    "parse_event",
]

MAX_SECONDS = 1e9
"""No time on a recording's timeline is further than this from its start (31 years)."""

MAX_RATE = 1000.0
"""No per-frame hashes are taken more often than this many times a second."""

MAX_SEGMENTS = 1_000_000
"""More segments than a recording can have (over 100 days of 10 s segments): a signed index or
count beyond it is malformed, not a reason to list a million missing positions."""


@dataclass(frozen=True)
class SignedEvent:
    position: int
    id: int
    action: str
    recording: str | None
    case: str | None
    reason: str | None
    detail: dict[str, object]


@dataclass(frozen=True)
class SignedSegment:
    index: int
    key: str
    sha256: str
    size: int
    start_s: float
    end_s: float
    origin_s: float
    previous: str
    chain: str
    event_id: int
    phash_sha256: str | None = None
    phash_rate: float | None = None
    phash_sampling: str | None = None  # "frames": every frame at its own time, else a grid
    audio_sha256: str | None = None  # the audio fingerprints blob (None: none signed)
    audio_tracks: int | None = None
    rotation: int = 0  # clockwise turn to upright its per-frame hashes were made with
    # its packets in the original, per stream (issue 18; empty: logged before, or not known)
    packets: tuple[PacketRange, ...] = ()
    # False: no copy of it is kept; it is cut again from the original when wanted, and is
    # what the original is (issue 18)
    kept: bool = True
    # False: its packets were logged after it (``segment.uncopied`` of a segment logged before
    # issue 18): signed by the log, not covered by its chain link
    packets_chained: bool = True
    # a live segment's bytes in the original (issue 18; None: cut from it, or logged before)
    source: SourceBytes | None = None

    @property
    def packets_digest(self) -> str | None:
        """SHA-256 over its signed packet ranges (None: none signed)."""
        return ranges_digest(self.packets) if self.packets else None

    @property
    def chain_digest(self) -> str | None:
        """What its chain link covers of its packet ranges (None: none)."""
        return self.packets_digest if self.packets_chained else None

    @property
    def grid_rate(self) -> float | None:
        """The fixed grid the signed per-frame hashes were sampled on; None when they are of
        every decoded frame (``vigil_verify.sampling``)."""
        if self.phash_sampling == SAMPLING_FRAMES:
            return None
        return self.phash_rate or 10.0

    @property
    def file_name(self) -> str:
        return self.key.rpartition("/")[2]


@dataclass(frozen=True)
class SignedRecovery:
    """What an ``original.recovered`` event signs: the recovered stream (a derived object) and
    the original it was recovered from, with the reference whose codec setup it took."""

    key: str
    sha256: str
    size: int
    original_sha256: str
    reference_recording: str
    reference_sha256: str
    event_id: int

    @property
    def file_name(self) -> str:
        return self.key.rpartition("/")[2]


@dataclass(frozen=True)
class SignedClip:
    """A clip an ``export.clip`` event of the case records: its file, hashes and window."""

    file: str
    recording: str
    from_s: float
    to_s: float
    method: str
    sha256: str
    manifest_sha256: str
    segments: tuple[tuple[int, str], ...]  # (index, sha256) of the segments it covers
    event_id: int


@dataclass
class SignedRecording:
    id: str
    original_sha256: str | None = None
    original_size: int | None = None
    anchor: str | None = None
    recovered: SignedRecovery | None = None  # from "original.recovered"
    segments: dict[int, SignedSegment] = field(default_factory=dict)
    segment_count: int | None = None  # from the "segment" summary event
    cutter: str | None = None  # from it too: the ffmpeg that cut the segment files
    windows: list[tuple[float | None, float | None]] = field(default_factory=list)
    unlinked: bool = False
    clips: dict[str, SignedClip] = field(default_factory=dict)  # by package path


@dataclass
class LedgerCheck:
    key_fingerprint: str | None = None
    key_source: str = "package"
    head: Checkpoint | None = None
    timestamp: str | None = None  # what the TSA check said, when there is a token
    events_total: int = 0
    events_proved: int = 0
    history_checked: int = 0
    problems: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)  # what could not be read at all
    witnesses: list[str] = field(default_factory=list)  # each trusted witness's verdict
    facts: dict[str, SignedRecording] = field(default_factory=dict)
    case: str | None = None
    heads: dict[int, bytes] = field(default_factory=dict)  # signed heads proved: size -> root

    def recording(self, recording_id: str) -> SignedRecording:
        return self.facts.setdefault(recording_id, SignedRecording(recording_id))


def _num(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{shown(value)} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{shown(value)} is not a finite number")
    return number


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{shown(value)} is not a string")
    return value


def _opt_str(value: object) -> str | None:
    return None if value is None else _str(value)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{shown(value)} is not an integer")
    return value


def _index(value: object) -> int:
    """A segment index or count: an integer from 0 to ``MAX_SEGMENTS``."""
    number = _int(value)
    if not 0 <= number <= MAX_SEGMENTS:
        raise ValueError(f"{number} is not a segment index or count (0 to {MAX_SEGMENTS})")
    return number


def _opt_seconds(value: object) -> float | None:
    return None if value is None else _seconds(value)


def _opt_sha256(value: object) -> str | None:
    return None if value is None else _sha256(value)


def _seconds(value: object) -> float:
    """A time on a recording's timeline: finite and within ``MAX_SECONDS`` of its start."""
    number = _num(value)
    if abs(number) > MAX_SECONDS:
        raise ValueError(f"{number:g} s is not a time in a recording")
    return number


def _rate(value: object) -> float:
    """Frames a second of per-frame hashes: more than 0, at most ``MAX_RATE``."""
    number = _num(value)
    if not 0 < number <= MAX_RATE:
        raise ValueError(f"{number:g} is not a frame rate")
    return number


def _sha256(value: object) -> str:
    """A SHA-256 as Vigil writes it: 64 lowercase hex digits."""
    text = _str(value)
    if len(text) != 64 or text.strip("0123456789abcdef"):
        raise ValueError(f"{shown(text)} is not a SHA-256 (64 lowercase hex digits)")
    return text


def _kept(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"kept {shown(value)} is not true or false")
    return value


def _packet_ranges(value: object) -> tuple[PacketRange, ...]:
    """A segment's signed packet ranges (absent in events logged before issue 18)."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 64:
        raise ValueError(f"packets {shown(value)} is not a list of at most 64 ranges")
    ranges = []
    for item in value:
        if not isinstance(item, dict):
            raise ValueError(f"packet range {shown(item)} is not an object")
        codec = _str(item["codec"])
        if not 0 < len(codec) <= 32 or codec.strip("abcdefghijklmnopqrstuvwxyz0123456789_"):
            raise ValueError(f"codec {shown(codec)} is not a codec name")
        ranges.append(
            PacketRange(
                stream=_index(item["stream"]), codec=codec, first=_count(item["first"]),
                count=_count(item["count"]), sha256=_sha256(item["sha256"]),
            )
        )  # fmt: skip
    return tuple(ranges)


def _source(value: object) -> SourceBytes | None:
    """A live segment's signed bytes in the original (absent: none signed)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"source {shown(value)} is not an object")
    return SourceBytes(
        offset=_bytes_count(value["offset"]), size=_bytes_count(value["size"]),
        sha256=_sha256(value["sha256"]), shift_s=_seconds(value.get("shift_s", 0.0)),
    )  # fmt: skip


def _bytes_count(value: object) -> int:
    """A byte offset or length in an original: an integer from 0 to 2**50."""
    number = _int(value)
    if not 0 <= number <= 1 << 50:
        raise ValueError(f"{number} is not a byte offset or length")
    return number


def _count(value: object) -> int:
    """A packet number or count: an integer from 0 to 2**40."""
    number = _int(value)
    if not 0 <= number <= 1 << 40:
        raise ValueError(f"{number} is not a packet number or count")
    return number


def _rotation(value: object) -> int:
    """A quarter turn to upright: 0, 90, 180 or 270 degrees clockwise; absent (older logs,
    or a picture not turned) is 0."""
    if value is None:
        return 0
    number = _int(value)
    if number not in (0, 90, 180, 270):
        raise ValueError(f"{number} is not a rotation (0, 90, 180 or 270)")
    return number


def parse_event(position: int, raw: str) -> SignedEvent:
    document = json.loads(raw)
    if not isinstance(document, dict):
        raise ValueError("an event must be a JSON object")
    detail = document.get("detail") or {}
    if not isinstance(detail, dict):
        raise ValueError("an event's detail must be a JSON object")
    recording, case, reason = (
        document.get("recording"),
        document.get("case"),
        document.get("reason"),
    )
    if recording is not None and not is_id(recording):
        # Recording IDs name folders of the package: one that is no ID names none.
        raise ValueError(f"recording {shown(recording)} is not a recording ID")
    return SignedEvent(
        position=position,
        id=_int(document.get("id")),
        action=_str(document.get("action")),
        recording=recording if isinstance(recording, str) else None,
        case=case if isinstance(case, str) else None,
        reason=reason if isinstance(reason, str) else None,
        detail=detail,
    )


def apply_event(check: LedgerCheck, event: SignedEvent) -> None:
    """What a proved event establishes about the footage."""
    d = event.detail
    if event.recording is None:
        return
    rec = check.recording(event.recording)
    if event.action == "original.recovered":
        rec.recovered = _recovery(event)
    elif event.action == "ingest" and "sha256" in d:
        rec.original_sha256 = _sha256(d["sha256"])
        rec.original_size = _int(d["size"])
        rec.anchor = rec.anchor or rec.original_sha256
    elif event.action == "ingest.live":
        rec.anchor = _sha256(d["anchor"])
    elif event.action == "original.stored":
        rec.original_sha256 = _sha256(d["sha256"])
        rec.original_size = _int(d["size"])
    elif event.action == "segment.stored":
        index = _index(d["index"])
        seg = SignedSegment(
            index=index,
            key=_str(d["key"]),
            sha256=_sha256(d["sha256"]),
            size=_int(d["size"]),
            start_s=_seconds(d["start_s"]),
            end_s=_seconds(d["end_s"]),
            origin_s=_seconds(d["origin_s"]),
            previous=_sha256(d["previous"]),
            chain=_sha256(d["chain"]),
            event_id=event.id,
            packets=_packet_ranges(d.get("packets")),
            kept=_kept(d.get("kept", True)),
            source=_source(d.get("source")),
        )
        known = rec.segments.get(index)
        if known is not None and known.sha256 != seg.sha256:
            check.problems.append(
                f"log: {rec.id} segment {index} is signed twice with different hashes"
                f" (events #{known.event_id} and #{event.id})"
            )
        rec.segments.setdefault(index, seg)
    elif event.action == "segment.hashed":
        _hashed(rec, d)
    elif event.action == "segment.uncopied":
        _uncopied(rec, d)
    elif event.action == "segment" and "count" in d:
        rec.segment_count = _index(d["count"])
        rec.cutter = _opt_str(d.get("cutter"))
    elif event.action == "case.link" and event.case == check.case:
        rec.windows.append((_opt_seconds(d.get("from_s")), _opt_seconds(d.get("to_s"))))
        rec.unlinked = False
    elif event.action == "export.clip" and event.case == check.case:
        clip = _clip(rec.id, event)
        rec.clips[clip.file] = clip
    elif event.action == "case.unlink" and event.case == check.case:
        rec.windows.clear()
        rec.unlinked = True


def _uncopied(rec: SignedRecording, d: dict[str, object]) -> None:
    """A ``segment.uncopied`` event (``vigil storage compact``): segments signed before, whose
    cut from the original was checked to make their signed bytes again, need no copy since."""
    listed = d.get("segments")
    if not isinstance(listed, list) or len(listed) > 1_000_000:
        raise ValueError(f"segments {shown(listed)} is not a list")
    for item in listed:
        if not isinstance(item, dict):
            raise ValueError(f"segment {shown(item)} is not an object")
        index = _index(item["index"])
        stored = rec.segments.get(index)
        if stored is None or stored.sha256 != _sha256(item["sha256"]):
            continue
        later = _packet_ranges(item.get("packets"))
        if later and not stored.packets:  # logged now for a segment logged before issue 18
            rec.segments[index] = replace(stored, kept=False, packets=later, packets_chained=False)
        else:
            rec.segments[index] = replace(stored, kept=False)


def _hashed(rec: SignedRecording, d: dict[str, object]) -> None:
    """A ``segment.hashed`` event: the per-frame hashes and audio fingerprints of a segment
    signed before (of those bytes)."""
    index = _index(d["index"])
    stored = rec.segments.get(index)
    if stored is not None and stored.sha256 == d.get("segment_sha256"):
        rec.segments[index] = SignedSegment(
            **{
                **stored.__dict__,
                "phash_sha256": _sha256(d["phash_sha256"]),
                "phash_rate": _rate(d["rate"]),
                "phash_sampling": _opt_str(d.get("sampling")),
                "audio_sha256": _opt_sha256(d.get("audio_sha256")),
                "audio_tracks": None if d.get("audio_tracks") is None else _int(d["audio_tracks"]),
                "rotation": _rotation(d.get("rotation")),
            }
        )


def _recovery(event: SignedEvent) -> SignedRecovery:
    d = event.detail
    reference = _str(d["reference_recording"])
    if not is_id(reference):
        raise ValueError(f"reference {shown(reference)} is not a recording ID")
    return SignedRecovery(
        key=_str(d["key"]),
        sha256=_sha256(d["sha256"]),
        size=_int(d["size"]),
        original_sha256=_sha256(d["original_sha256"]),
        reference_recording=reference,
        reference_sha256=_sha256(d["reference_sha256"]),
        event_id=event.id,
    )


def _clip(recording: str, event: SignedEvent) -> SignedClip:
    d = event.detail
    listed = d.get("segments")
    if not isinstance(listed, list):
        raise ValueError(f"segments {shown(listed)} is not a list")
    segments = tuple(
        (_index(s.get("index")), _sha256(s.get("sha256"))) for s in listed if isinstance(s, dict)
    )
    return SignedClip(
        file=_str(d.get("file")),
        recording=recording,
        from_s=_seconds(d.get("from_s")),
        to_s=_seconds(d.get("to_s")),
        method=_str(d.get("method")),
        sha256=_sha256(d.get("sha256")),
        manifest_sha256=_sha256(d.get("manifest_sha256")),
        segments=segments,
        event_id=event.id,
    )


def parse_entry(line: str) -> tuple[int, bytes, list[bytes], SignedEvent]:
    """One line of events.jsonl: the leaf position, the event's bytes, its inclusion proof and
    the event."""
    entry = json.loads(line)
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    raw = _str(entry.get("event"))
    position = _int(entry.get("position"))
    proof = entry.get("proof")
    if not isinstance(proof, list):
        raise ValueError(f"proof {shown(proof)} is not a list")
    hashes = [bytes.fromhex(_str(p)) for p in proof]
    return position, raw.encode("utf-8"), hashes, parse_event(position, raw)
