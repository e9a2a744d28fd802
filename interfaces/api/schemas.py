"""The API's request and response models (pydantic), the path parameters' shapes, and the error
responses every operation documents (``ERRORS``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from vigil_verify.verdicts import Finding, Verdict

from catalog.tracks import KeptTrack, TrackGps
from ingest.service import GpsFix
from ingest.uploads import MAX_CHUNK

_HEX64 = r"^[0-9a-fA-F]{64}$"
_ID = r"^[A-Za-z0-9._:-]{1,64}$"

CasePath = Annotated[str, Field(pattern=_ID)]
HexId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]  # upload and export request IDs


class ErrorBody(BaseModel):
    detail: str


class ValidationIssue(BaseModel):
    """One field at fault (FastAPI's request validation; also ``input`` and ``ctx``)."""

    loc: list[str | int]
    msg: str
    type: str


class UnprocessableBody(BaseModel):
    detail: str | list[ValidationIssue] = Field(
        description="Why; for a request that does not match this schema, the fields at fault."
    )


ERRORS: dict[int | str, dict[str, Any]] = {
    **{code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 416)},
    422: {"model": UnprocessableBody},
    429: {
        "model": ErrorBody,
        "description": "Too many failed authentications from this address; see Retry-After.",
    },
}


def _media(*types: str, partial: bool = False) -> dict[int | str, dict[str, Any]]:
    """ERRORS, and the 200 (and 206 for a byte range) of a binary response of ``types``."""
    content = {t: {"schema": {"type": "string", "format": "binary"}} for t in types}
    ok: dict[int | str, dict[str, Any]] = {200: {"content": content}}
    if partial:
        ok[206] = {"description": "The range asked for (Range: bytes=a-b)", "content": content}
    return {**ERRORS, **ok}


# -- response models -----------------------------------------------------------------------------


class Me(BaseModel):
    id: str
    role: str
    display_name: str
    device_id: str | None
    officer_id: str | None
    assigned_cases: list[str]


class UploadStart(BaseModel):
    device_id: str = Field(pattern=_ID)
    officer_id: str | None = Field(None, pattern=_ID)
    size: int = Field(gt=0, le=1 << 40, description="Bytes the device will send.")
    original_name: str = Field(
        "recording.mp4", min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$"
    )
    category: str | None = Field(None, max_length=64)
    device_start: datetime | None = Field(None, description="Device time the recording began.")
    device_clock: datetime | None = Field(
        None, description="The device's clock now, as it starts the upload (drift check)."
    )
    gps_track: list[GpsFix] = Field(default_factory=list, max_length=100_000)


class UploadStatus(BaseModel):
    upload_id: str
    size: int
    offset: int = Field(description="Bytes confirmed: resume from here.")
    chunks: int
    status: Literal["open", "complete", "failed", "expired"]
    recording_id: str | None
    sha256: str | None
    may_delete: bool = Field(description="True once stored: the device may delete its copy.")
    error: str | None
    max_chunk: int = MAX_CHUNK


class UploadFinish(BaseModel):
    sha256: str = Field(pattern=_HEX64, description="SHA-256 of the whole file.")


class CaseSummary(BaseModel):
    case_id: str
    recordings: int


class SegmentOut(BaseModel):
    index: int
    start_s: float
    end_s: float
    wall_start: datetime | None
    sha256: str
    phash_digest: str | None
    integrity: str


class GapOut(BaseModel):
    kind: str
    start_s: float
    seconds: float


class RecordingOut(BaseModel):
    id: str
    device_id: str
    officer_id: str | None
    category: str | None
    device_start: datetime | None
    received_at: datetime
    clock_offset_s: float | None
    duration_s: float | None
    status: str
    sha256: str
    damage: str | None
    audio_tracks: int | None = Field(
        default=None,
        description="How many audio tracks the segments carry, each byte-copied (0: none);"
        " null: not counted (not yet probed, or catalogued before tracks were counted).",
    )
    audio_codec: str | None = Field(
        default=None, description="The codec of the first audio track; null: none."
    )
    provenance: str = Field(
        default="no C2PA manifest",
        description="The C2PA manifest the original carried, as its custody event records it:"
        ' "signed at capture by <certificate subject>: valid" (or invalid, untrusted).',
    )
    tracks: str = Field(
        default="not listed (catalogued before such tracks were)",
        description="The subtitle, data and timecode tracks, as the recording's signed"
        ' "segment" custody event lists them, and where each is kept: "subtitle mov_text'
        " (stream 2), timecode tmcd (stream 3): kept in the original only, not in the"
        ' segments"; "none besides video and audio".',
    )
    recovered: str | None = Field(
        default=None,
        description="Footage recovered from an unfinalised original, as its signed"
        ' "original.recovered" custody event records it: "recovered: video only, audio not'
        ' recovered (...)"; null: not recovered.',
    )
    extra_tracks: list[KeptTrack] | None = Field(
        default=None,
        description="The same tracks, one by one; null: not listed (segmented before they"
        " were, a live stream, or not yet segmented).",
    )
    gps: list[TrackGps] = Field(
        default_factory=list,
        description="The GPS read out of those tracks (GoPro GPMF in a data track, NMEA"
        ' sentences in a subtitle track), as the signed "segment" event lists it: form,'
        " fixes, their UTC span, and the derived object (JSON) holding them with its SHA-256.",
    )
    window_from_s: float | None
    window_to_s: float | None
    segments: list[SegmentOut]
    gaps: list[GapOut]
    continuous: bool


class DeviceGapOut(BaseModel):
    kind: str
    after: str
    before: str
    start: datetime
    seconds: float


class TimelineOut(BaseModel):
    case_id: str
    continuous: bool
    recordings: list[RecordingOut]
    device_gaps: list[DeviceGapOut]


class WindowOut(BaseModel):
    from_s: float | None = Field(description="Seconds on the recording's timeline; null: start.")
    to_s: float | None = Field(description="Null: to the end.")


class PlaybackOut(BaseModel):
    recording_id: str
    original: str | None = Field(
        description="Signed URL of the original (HTTP byte ranges); null when the case the"
        " caller reaches it through links only a window of it."
    )
    playlist: str | None = Field(description="Signed URL of the HLS playlist of the segments.")
    proxy: str | None = Field(
        default=None,
        description=(
            "Signed URL of the HLS playlist of the review proxy (H.264/AAC), made for a source"
            " whose evidence segments a browser cannot play; null for the others."
        ),
    )
    proxy_pending: bool = Field(
        default=False,
        description="The review proxy is being made (first, or again after it expired from"
        " the cache): ask again for its link.",
    )
    windows: list[WindowOut] = Field(
        default_factory=list,
        description="The windows of the recording the caller may see (the playlists list only"
        " the files that overlap them); empty: all of it.",
    )
    expires_at: datetime


class FindingOut(BaseModel):
    """One verdict, as ``vigil verify --json`` and ``vigil-verify --json`` give it
    (``vigil_verify.verdicts``; the README's "Verdicts" lists the words)."""

    kind: Verdict
    recording: str
    index: int | None = Field(description="The segment; null: the original.")
    ranges: list[tuple[float, float]] = Field(
        description="Seconds on the recording's timeline: where the picture was edited, what a"
        " truncated segment lacks, all of a segment none of whose pictures is found."
    )
    detail: str
    file: str | None = Field(description="The object's key in the store.")

    @classmethod
    def of(cls, finding: Finding) -> FindingOut:
        return cls(
            kind=finding.kind,
            recording=finding.recording,
            index=finding.index,
            ranges=list(finding.ranges),
            detail=finding.detail,
            file=finding.file,
        )


class VerifyOut(BaseModel):
    recording_id: str
    ok: bool
    original: Verdict
    problems: list[str]
    segments: dict[str, Verdict] = Field(description="Each segment's verdict, by its index.")
    findings: list[FindingOut] = Field(
        description="The original's finding, then each segment's, with detail and time ranges."
    )


class EventOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    recording_id: str | None
    case_id: str | None
    reason: str | None
    detail: dict[str, Any] | None
    leaf: str | None = Field(description="The exact bytes in the log (canonical JSON).")
    position: int | None
    proof: list[str] | None = Field(description="RFC 6962 inclusion proof (hex), leaf first.")


class CustodyOut(BaseModel):
    case_id: str
    checkpoint: str = Field(description="The signed tree head the proofs are against.")
    tree_size: int
    events: list[EventOut]
    next_after: int | None = Field(
        None, description="More events follow: ask again with after=this. Null: the last page."
    )


class ExportAsk(BaseModel):
    reason: str = Field(min_length=3, max_length=2000)
    clips: bool = Field(
        False,
        description="Also an MP4 clip of each linked window carrying C2PA Content Credentials"
        " signed with the agency's key (needs VIGIL_C2PA_SIGN_CERT and VIGIL_C2PA_SIGN_KEY).",
    )


class ExportDecision(BaseModel):
    note: str = Field("", max_length=2000)


class ExportOut(BaseModel):
    id: str
    case_id: str
    requested_by: str
    reason: str
    requested_at: datetime
    status: str
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    package_sha256: str | None
    package_size: int | None
    clips: bool


class CheckpointOut(BaseModel):
    tree_size: int
    root: str
    note: str
    public_key_pem: str
    key_fingerprint: str


class Report(BaseModel):
    """A statistics report: its name, the period it covers and its rows (and a summary)."""

    report: str
    since: date | None
    until: date | None
    time_zone: str
    rows: list[dict[str, Any]]
    summary: dict[str, Any] | None = None
