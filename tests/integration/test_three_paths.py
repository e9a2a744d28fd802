"""The three paths, each its own stage: custody (stream copy, SHA-256, keyframe hashes,
catalogue) is on record before the dense index or the review proxy has started; the proxy is
made only for a source a browser cannot play, hashed, linked to its original and served."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pdqhash
import pytest

from integrity.phash import hamming
from tests.helpers import metadata, object_path, segment_path
from tests.integration.test_api import serve
from transcode.probe import probe
from transcode.proxy_settings import ProxySettings
from transcode.samples import SampleSpec
from transcode.segmenter import _measure, segment_file
from workers.app import Vigil
from workers.messages import OriginalStored, ProxyStored, RecordingSegmented, SegmentStored

pytestmark = pytest.mark.ffmpeg

H264 = SampleSpec(duration_s=12.0, width=640, height=360, seed=21)
MPEG4 = SampleSpec(duration_s=6.0, width=320, height=240, codec="mpeg4", container="avi", seed=22)


def stored(app: Vigil, clip: Path) -> OriginalStored:
    result = app.ingest.ingest_file(clip, metadata(clip.name), actor="test")
    rec = app.catalog.recording(result.recording_id)
    return OriginalStored(
        recording_id=rec.id, original_key=rec.original_key, sha256=rec.sha256, size=rec.size
    )


def decode_at(ffmpeg: str, path: Path, at: float) -> np.ndarray:
    """One frame at ``at`` (file timestamps) by a full decode, scaled the way the pipeline
    scales: an independent check of the keyframe hashes."""
    raw = subprocess.run(
        [ffmpeg, "-v", "error", "-copyts", "-i", str(path), "-map", "0:v:0",
         "-vf", f"select=gte(t\\,{at - 0.001:.6f}),scale=64:64:flags=area,format=gray",
         "-frames:v", "1", "-f", "rawvideo", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(64, 64)


def test_custody_is_on_record_before_the_dense_index_and_keyframes_are_hashed(
    app: Vigil, make_clip: Callable[[SampleSpec], Path], ffmpeg: str
) -> None:
    message = stored(app, make_clip(H264))
    out = app.stages["segment"](message)  # the custody stage alone
    rec = app.catalog.recording(message.recording_id)
    segments = app.catalog.segments(rec.id)
    # On record: every segment stored, hashed, chained and logged; no dense hash yet.
    assert rec.status == "segmented"
    assert rec.playback == "copy"
    assert len(segments) == 2
    assert all(s.phash is None for s in segments)
    assert [m.type for m in out] == ["segment.stored", "segment.stored", "recording.segmented"]
    events = [e for e in app.catalog.events(recording_ids=[rec.id]) if e.action == "segment.stored"]
    assert len(events) == 2
    origin = rec.origin_s or 0.0
    for seg, event in zip(segments, events, strict=True):
        keyframes = json.loads(seg.keyframes or "[]")
        # A 1 s GOP: one keyframe a second, each inside its segment, in the signed event too.
        assert [k["t"] for k in keyframes] == pytest.approx(
            [float(t) for t in range(round(seg.start_s), round(seg.end_s))], abs=0.02
        )
        assert json.loads(event.detail or "{}")["keyframes"] == keyframes
        path = segment_path(app, seg)
        for k in keyframes[:3]:
            bits, _quality = pdqhash.compute(
                np.repeat(decode_at(ffmpeg, path, origin + k["t"])[:, :, None], 3, axis=2)
            )
            independent = np.packbits(np.asarray(bits, np.uint8))
            assert hamming(independent, np.frombuffer(bytes.fromhex(k["pdq"]), np.uint8)) <= 2
    # Finalise waits for the dense index; the transcode stage has nothing to do for H.264.
    assert app.stages["finalise"](out[-1]) == []
    assert app.stages["transcode"](out[-1]) == []
    app.run_pipeline()
    assert app.catalog.recording(rec.id).status == "complete"


def test_split_timing_equals_probing_every_segment(
    app: Vigil, make_clip: Callable[[SampleSpec], Path], tmp_path: Path
) -> None:
    """The custody path times segments from the original's probe, split where ffmpeg cut;
    reading every segment back gives the same starts, ends, frame counts and holes."""
    for spec in (
        SampleSpec(duration_s=25.0, width=320, height=240, seed=5, gop_s=2.0),
        SampleSpec(duration_s=14.0, width=320, height=240, seed=6, hole_at_s=5.0, hole_s=2.0),
    ):
        clip = make_clip(spec)
        probed = probe(app.tools.runner, app.tools.ffmpeg, clip)
        outcome = segment_file(
            app.tools.runner, app.tools.ffmpeg, clip, tmp_path / clip.stem, probed=probed,
            segment_s=4.0, timeout_s=120, tolerance_frames=1.0,
        )  # fmt: skip
        assert outcome.measured == "split"
        tracks = _measure(
            app.tools.runner, app.tools.ffmpeg, [s.path for s in outcome.segments], 120
        )
        assert len(outcome.segments) >= 3
        for seg, track in zip(outcome.segments, tracks, strict=True):
            assert track is not None
            assert seg.start_s == pytest.approx(track.start_s, abs=1e-4)
            assert seg.end_s == pytest.approx(track.end_s, abs=1e-4)
            assert seg.frames == track.count
            flat = [t for hole in track.jumps(0.1) for t in hole]
            assert [t for hole in seg.holes for t in hole] == pytest.approx(flat, abs=1e-4)
        if spec.hole_at_s is not None:
            assert any(seg.holes for seg in outcome.segments)


@pytest.fixture
def proxied(app: Vigil, make_clip: Callable[[SampleSpec], Path]) -> tuple[Vigil, str]:
    message = stored(app, make_clip(MPEG4))
    out = app.stages["segment"](message)
    rec_id = message.recording_id
    assert app.catalog.recording(rec_id).playback == "proxy"
    segmented = out[-1]
    assert isinstance(segmented, RecordingSegmented)
    for m in out:
        if isinstance(m, SegmentStored):
            app.stages["phash"](m)
    # Every dense hash is in, but no proxy yet: not complete.
    assert app.stages["finalise"](segmented) == []
    assert app.catalog.recording(rec_id).status != "complete"
    (done,) = app.stages["transcode"](segmented)
    assert isinstance(done, ProxyStored)
    assert done.count >= 1
    # Again (a redelivered message): the same answer, nothing made twice.
    assert app.stages["transcode"](segmented) == [done]
    proxy_events = [
        e for e in app.catalog.events(recording_ids=[rec_id]) if e.action == "proxy.stored"
    ]
    assert len(proxy_events) == 1
    assert [m.type for m in app.stages["finalise"](done)] == ["recording.catalogued"]
    assert app.catalog.recording(rec_id).status == "complete"
    return app, rec_id


def test_a_source_a_browser_cannot_play_gets_a_linked_proxy(proxied: tuple[Vigil, str]) -> None:
    app, rec_id = proxied
    rec = app.catalog.recording(rec_id)
    segments = app.catalog.segments(rec_id)
    # The evidence stays MPEG-4 Part 2, stream-copied; the proxy is H.264.
    first = probe(app.tools.runner, app.tools.ffmpeg, segment_path(app, segments[0]))
    assert first.video is not None
    assert first.video.stream.codec == "mpeg4"
    files = app.catalog.proxy_segments(rec_id)
    made = probe(app.tools.runner, app.tools.ffmpeg, object_path(app, "derived", files[0].key))
    assert made.playable
    (event,) = [e for e in app.catalog.events(recording_ids=[rec_id]) if e.action == "proxy.stored"]
    detail = json.loads(event.detail or "{}")
    assert detail["source_sha256"] == rec.sha256
    # the encoding as made: a 320x240 picture gets the small-picture preset, and a cap
    size = object_path(app, "originals", rec.original_key).stat().st_size
    kbps = size * 8 / 1000 / (rec.duration_s or 1)
    cap = ProxySettings().maxrate_kbps(320, 240, kbps)
    assert detail["settings"].startswith(f"libx264 preset=superfast crf=23 maxrate={cap}k")
    assert [f["sha256"] for f in detail["files"]] == [f.sha256 for f in files]


def test_the_api_serves_the_proxy_by_signed_links(proxied: tuple[Vigil, str]) -> None:
    app, rec_id = proxied
    app.access.add_principal("sam", "supervisor", display_name="sam", actor="setup")
    token = app.access.issue_token("sam", label="t", actor="setup").token
    app.cases.link("CASE-P", rec_id, from_s=None, to_s=None, reason="test", actor="setup")
    for url in serve(app):
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
            answer = c.get(f"/api/v1/recordings/{rec_id}/playback", params={"case": "CASE-P"})
            assert answer.status_code == 200, answer.text
            links = answer.json()
            assert links["proxy"] is not None
            listing = c.get(links["proxy"])
            assert listing.status_code == 200
            signed = [line for line in listing.text.splitlines() if "/proxy/" in line]
            files = app.catalog.proxy_segments(rec_id)
            assert len(signed) == len(files)
            first = c.get(signed[0])
            assert first.status_code == 200
            assert first.headers["content-type"] == "video/mp2t"
            assert first.content == object_path(app, "derived", files[0].key).read_bytes()
            seg = c.get(c.get(links["playlist"]).text.splitlines()[-2])
            assert seg.status_code == 200
            assert seg.headers["content-type"] == "video/x-matroska"
            forged = signed[0].replace("sig=", "sig=0")
            assert c.get(forged).status_code == 403
