"""Fixed-site cameras on a real loopback stream: an RTMP push to Vigil's listener and an HTTP
pull, each with the camera going away and coming back in the middle of one recording.

The "camera" is a second ffmpeg sending a ``-re`` testsrc2 with a sine tone, as H.264/AAC, so
its footage runs in real time. Each new camera process starts its timestamps at 0, like a
camera that reconnects. To check *where* the recorder puts each session on the timeline, and
not only how long the gap is, each camera also reports its own progress (``-progress``, every
50 ms): ``Camera.zero``, the least (report time - output time), is when it sent its time 0 on
the test's clock. The recorder never sees that; it places sessions from the arrival times of
the packets it receives. The second session's first frame must be ``cam2.zero - cam1.zero``
into the recording.

Figures measured on the development machine: a camera process sends its first frame 0.17-0.27 s
after it starts (ffmpeg, lavfi and x264 start-up and the RTMP handshake; more when the machine
is busy, which is why the cameras' own clocks are the reference and not their start times);
the footage of a killed camera ends 0.10-0.12 s before the kill (its first frame's 64 ms
timestamp, after the AAC priming, and what was in flight); so a 5.00 s outage between two
camera processes shows as a 5.33-5.38 s gap. The second session is placed within 0.005 s of
where its camera's clock puts it (0.05 s off before the reference ignored the camera's last,
flushing report: see ``Camera``); the listener is back 0.09-0.18 s after a disconnect.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from ingest.live import LivePolicy, LiveRecorder, LiveResult, LiveSource
from ingest.service import RecordingMetadata
from integrity.timeline import case_timeline
from interfaces.devservices.base import free_port
from tests.helpers import listening, stored_bytes
from transcode.probe import probe
from workers.app import Vigil

FPS = 15
SEGMENT_S = 4.0
STARTUP_S = 0.5  # a camera process's start to its first frame (measured 0.17-0.27 s)
PLACEMENT_S = 0.1  # a session's place vs its camera's clock (measured within 0.005 s)
KILL_AT_S = 15.0  # the pushing camera goes away this long after it started (4 segments)...
BACK_AFTER_S = 5.0  # ...comes back after this long...
END_S = 36.0  # ...and the recording is stopped this long after the first camera started


def camera_command(ffmpeg: str, url: str, *, serve: bool = False) -> list[str]:
    """A camera streaming live: FLV to an RTMP URL, or (``serve``) MPEG-TS served over HTTP
    to the one client that pulls it (ffmpeg's ``-listen 1`` HTTP server)."""
    out = ["-f", "mpegts", "-listen", "1", url] if serve else ["-f", "flv", url]
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
        "-progress", "pipe:1", "-stats_period", "0.05", "-re",
        "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate={FPS}",
        "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", str(FPS),
        "-c:a", "aac", *out,
    ]  # fmt: skip


def recorder(app: Vigil) -> LiveRecorder:
    return app.live_recorder(segment_s=SEGMENT_S)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield executor


class Camera:
    """A camera process and its own clock (``zero``: when it sent its time 0, monotonic)."""

    def __init__(self, ffmpeg: str, url: str, *, serve: bool = False) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            camera_command(ffmpeg, url, serve=serve), stdout=subprocess.PIPE
        )
        self.zero = math.inf
        threading.Thread(target=self._progress, daemon=True).start()

    def _progress(self) -> None:
        assert self.process.stdout is not None
        out_time = 0
        for raw in self.process.stdout:
            key, _, value = raw.decode().strip().partition("=")
            if key == "out_time_us" and value.isdigit():
                out_time = int(value)
            elif key == "progress" and value == "continue" and out_time > 0:
                # Everything up to out_time has been sent by now. (Not the last report,
                # "progress=end": it counts what was flushed at the end, never sent.)
                self.zero = min(self.zero, time.monotonic() - out_time / 1e6)

    def kill(self) -> float:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        return time.monotonic()


@pytest.fixture
def cameras() -> Iterator[list[Camera]]:
    started: list[Camera] = []
    yield started
    for camera in started:
        camera.kill()


def start_recording(
    pool: ThreadPoolExecutor,
    app: Vigil,
    source: LiveSource,
    policy: LivePolicy,
    stop: threading.Event,
) -> Future[LiveResult]:
    metadata = RecordingMetadata(
        device_id="CAM-EAST-GATE", officer_id=None, category="fixed-site", original_name="live.ts"
    )
    return pool.submit(
        recorder(app).record, source, metadata, actor="test", policy=policy, stop=stop
    )


def push_camera(cameras: list[Camera], ffmpeg: str, url: str) -> Camera:
    """Once Vigil listens on ``url``, start a camera publishing to it."""
    port = int(url.split(":")[2].split("/")[0])
    deadline = time.monotonic() + 30
    while not listening(port):
        assert time.monotonic() < deadline, "Vigil's RTMP listener never came up"
        time.sleep(0.01)
    cameras.append(Camera(ffmpeg, url))
    time.sleep(1.0)
    assert cameras[-1].process.poll() is None, "the camera could not publish"
    return cameras[-1]


def events(app: Vigil, recording_id: str) -> list[tuple[str, dict[str, object]]]:
    return [
        (e.action, json.loads(e.detail) if e.detail else {})
        for e in app.catalog.events(recording_ids=[recording_id])
    ]


def video_packets(app: Vigil, path: Path) -> int:
    probed = probe(app.tools.runner, app.tools.ffmpeg, path, timeout_s=120)
    assert probed.video is not None
    return probed.video.count


@pytest.mark.ffmpeg
@pytest.mark.slow
def test_a_pushing_camera_away_for_5_s_leaves_one_5_s_gap_in_one_recording(
    app_factory: Callable[..., Vigil], ffmpeg: str, pool: ThreadPoolExecutor, cameras: list[Camera]
) -> None:
    # Without copies (issue 18): the original is both sessions' segments as received, and
    # each segment is read back from it (the second session's retimed by its signed shift).
    app = app_factory(segment_copies="derive")
    url = f"rtmp://127.0.0.1:{free_port()}/live/CAM-EAST-GATE"
    stop = threading.Event()
    policy = LivePolicy(max_s=300, max_outage_s=30, retry_s=1, io_timeout_s=5)
    future = start_recording(pool, app, LiveSource(url, "push"), policy, stop)
    cam1 = push_camera(cameras, ffmpeg, url)
    time.sleep(cam1.started + KILL_AT_S - time.monotonic())
    gone = cam1.kill()
    time.sleep(BACK_AFTER_S)
    cam2 = push_camera(cameras, ffmpeg, url)
    time.sleep(cam1.started + END_S - time.monotonic())
    stop.set()
    result = future.result(timeout=120)
    cam2.kill()

    assert result.reason == "stopped"
    assert result.sessions == 2
    app.run_pipeline()
    rec = app.catalog.recording(result.recording_id)
    assert rec.status == "complete"
    assert rec.damage is None
    assert rec.duration_s is not None
    assert END_S - 2 * STARTUP_S < rec.duration_s < END_S

    # The case timeline shows the outage, and only it, where it happened.
    app.cases.link("CASE-GATE", rec.id, from_s=None, to_s=None, reason="test", actor="test")
    timeline = case_timeline(
        app.catalog,
        "CASE-GATE",
        tolerance_frames=app.settings.continuity_tolerance_frames,
        device_tolerance_s=2,
    )
    (view,) = timeline.recordings
    (gap,) = view.gaps
    assert gap.kind == "gap"
    resumed = gap.start + gap.seconds
    outage = cam2.started - gone  # 5 s without a camera process
    print(  # shown when the test fails, and with -s
        f"outage {outage:.3f} s, gap {gap.seconds:.3f} s from {gap.start:.3f} s;"
        f" camera start-up {cam1.zero - cam1.started:.3f} s, {cam2.zero - cam2.started:.3f} s;"
        f" footage of camera 1 ends {gone - cam1.zero - gap.start:.3f} s before it is killed;"
        f" session 2 placed {resumed - (cam2.zero - cam1.zero):+.3f} s off its camera's clock"
    )
    # The second camera's first frame is where its own clock puts it...
    assert resumed == pytest.approx(cam2.zero - cam1.zero, abs=PLACEMENT_S)
    # ...the first camera's footage ends when it was killed (less what was in flight)...
    assert gone - cam1.zero - 0.5 < gap.start <= gone - cam1.zero + PLACEMENT_S
    # ...so the gap is the 5 s outage plus the new camera's start-up.
    assert outage - PLACEMENT_S <= gap.seconds <= outage + STARTUP_S + 0.5
    (outage_s,) = result.outages_s
    assert outage_s == pytest.approx(gap.seconds, abs=1e-6)

    # Segments on both sides, in one numbering, every one stored and hashed.
    segments = app.catalog.segments(rec.id)
    before = [s for s in segments if s.end_s <= gap.start + 1e-6]
    after = [s for s in segments if s.start_s >= resumed - 1e-6]
    assert len(before) >= 3
    assert len(after) >= 3
    assert len(before) + len(after) == len(segments) == rec.segment_count
    assert (gap.after, gap.before) == (f"segment {before[-1].index}", f"segment {after[0].index}")
    assert [s.index for s in segments] == list(range(len(segments)))
    assert all(v.integrity == "hashed" for v in view.segments)
    assert all(s.phash_frames for s in segments)
    # Keyframes hashed on the custody path as each segment closed, on the timeline of the
    # recording (the second session's retimed too): a 1 s GOP in a 4 s segment.
    for s in segments:
        times = [k["t"] for k in json.loads(s.keyframes or "[]")]
        assert times, f"segment {s.index} has no keyframe hashes"
        assert all(s.start_s - 0.05 <= t < s.end_s for t in times), (s.index, times)

    # Both sessions are on one timeline and one hash chain, and the footage is intact (the
    # perceptual hashes are recomputed too, on the retimed second session).
    verification = app.verifier.verify_recording(rec.id, actor="test", full=True)
    assert verification.ok, verification.problems
    assert all(c.kind == "intact" for c in verification.segments)

    # The custody log tells the disconnect and the reconnect, in order with the segments.
    log = events(app, rec.id)
    actions = [a for a, _ in log]
    stored = [d["index"] for a, d in log if a == "segment.stored"]
    down, up = actions.index("live.disconnected"), actions.index("live.reconnected")
    assert actions.count("live.disconnected") == actions.count("live.reconnected") == 1
    assert stored == [s.index for s in segments]
    assert actions[:down].count("segment.stored") == len(before)
    assert down < up < actions.index("segment.stored", up)
    disconnected, reconnected = log[down][1], log[up][1]
    assert disconnected["session"] == 1
    assert disconnected["segments"] == len(before)
    assert disconnected["timeline_end_s"] == pytest.approx(gap.start, abs=1e-6)
    assert "end of stream" in str(disconnected["cause"])
    assert reconnected["session"] == 2
    assert reconnected["attempts"] == 1  # the listener was back before the camera
    assert reconnected["outage_s"] == pytest.approx(gap.seconds, abs=1e-6)
    assert reconnected["timeline_start_s"] == pytest.approx(resumed, abs=1e-6)
    ended = next(d for a, d in log if a == "live.ended")
    assert (ended["reason"], ended["sessions"]) == ("stopped", 2)

    # The original is both sessions as received, one after the other, and ffmpeg reads it all.
    original = app.settings.store_root / "originals" / rec.original_key
    assert video_packets(app, original) == sum(s.frame_count for s in segments)
    # Each packet is stored once: the original holds every segment's signed bytes, back to
    # back; the second session's are retimed by their signed shift when read; no copy is left.
    sources = [s.source_bytes for s in segments]
    assert all(source is not None for source in sources)
    ends = [0, *(s.offset + s.size for s in sources if s is not None)]
    assert [s.offset for s in sources if s is not None] == ends[:-1]
    assert ends[-1] == original.stat().st_size == rec.size
    shifts = {s.shift_s for s in sources if s is not None}
    assert shifts == {0.0, reconnected["shift_s"]} and reconnected["shift_s"] != 0.0
    assert not any(s.kept for s in segments)
    assert stored_bytes(app)["derived"] < 4_000
    assert stored_bytes(app)["originals"] == rec.size


@pytest.mark.ffmpeg
@pytest.mark.slow
def test_a_pulled_camera_is_pulled_again_until_it_is_back_and_given_up_after_max_outage(
    app: Vigil, ffmpeg: str, pool: ThreadPoolExecutor, cameras: list[Camera]
) -> None:
    url = f"http://127.0.0.1:{free_port()}/cam.ts"
    stop = threading.Event()
    policy = LivePolicy(max_s=120, max_outage_s=4, retry_s=0.5, io_timeout_s=5)
    future = start_recording(pool, app, LiveSource(url), policy, stop)
    time.sleep(1.0)  # the recorder is already pulling: refused, retried every 0.5 s
    cameras.append(cam1 := Camera(ffmpeg, url, serve=True))
    time.sleep(10.0)
    gone = cam1.kill()
    time.sleep(2.5)
    cameras.append(cam2 := Camera(ffmpeg, url, serve=True))
    time.sleep(8.0)
    last = cam2.kill()  # for good: the recording ends max_outage_s later
    result = future.result(timeout=60)
    ended_after = time.monotonic() - last

    assert result.reason == "camera lost"
    assert result.sessions == 2
    # The outage is counted from the last packet the recorder saw (``LivePolicy``), which
    # ffmpeg reports with its progress, every 0.5 s: up to that much before the kill.
    assert policy.max_outage_s - 0.5 <= ended_after < policy.max_outage_s + 3
    app.run_pipeline()
    rec = app.catalog.recording(result.recording_id)
    assert rec.status == "complete"
    assert rec.damage is None
    segments = app.catalog.segments(rec.id)
    app.cases.link("CASE-PULL", rec.id, from_s=None, to_s=None, reason="test", actor="test")
    timeline = case_timeline(app.catalog, "CASE-PULL", tolerance_frames=1, device_tolerance_s=2)
    ((gap,),) = [v.gaps for v in timeline.recordings]
    # This camera serves from the moment it is pulled: its footage resumes at the first pull
    # after it is back, at most retry_s after it started listening.
    assert gap.start + gap.seconds == pytest.approx(cam2.zero - cam1.zero, abs=PLACEMENT_S)
    outage = cam2.started - gone
    assert outage - PLACEMENT_S <= gap.seconds <= outage + policy.retry_s + STARTUP_S + 0.5
    (outage_s,) = result.outages_s
    assert outage_s == pytest.approx(gap.seconds, abs=1e-6)
    log = events(app, rec.id)
    (reconnected,) = [d for a, d in log if a == "live.reconnected"]
    assert int(str(reconnected["attempts"])) >= 3  # refused pulls while it was away
    assert [a for a, _ in log].count("live.disconnected") == 2  # the last one too
    assert app.verifier.verify_recording(rec.id, actor="test").ok
    original = app.settings.store_root / "originals" / rec.original_key
    assert video_packets(app, original) == sum(s.frame_count for s in segments)


@pytest.mark.ffmpeg
@pytest.mark.slow
def test_a_camera_gone_silent_without_closing_its_connection_is_noticed(
    app: Vigil, ffmpeg: str, pool: ThreadPoolExecutor, cameras: list[Camera]
) -> None:
    """A power or network cut: the connection stays open, nothing more comes."""
    url = f"rtmp://127.0.0.1:{free_port()}/live/CAM-EAST-GATE"
    policy = LivePolicy(max_s=120, max_outage_s=3, retry_s=1, io_timeout_s=2)
    future = start_recording(pool, app, LiveSource(url, "push"), policy, threading.Event())
    camera = push_camera(cameras, ffmpeg, url)
    time.sleep(camera.started + 8.0 - time.monotonic())
    camera.process.send_signal(signal.SIGSTOP)
    frozen = time.monotonic()
    result = future.result(timeout=60)
    camera.process.send_signal(signal.SIGCONT)

    assert result.reason == "camera lost"
    assert result.sessions == 1
    # Noticed io_timeout_s after the last packet, then max_outage_s (+ polling) to give up.
    assert time.monotonic() - frozen < policy.io_timeout_s + policy.max_outage_s + 2
    app.run_pipeline()
    rec = app.catalog.recording(result.recording_id)
    assert rec.status == "complete"
    (disconnected,) = [d for a, d in events(app, rec.id) if a == "live.disconnected"]
    assert disconnected["cause"] == "no data for 2 s"
    assert disconnected["segments"] == rec.segment_count
    assert app.verifier.verify_recording(rec.id, actor="test").ok


@pytest.mark.ffmpeg
def test_a_camera_that_never_publishes_ends_the_recording_after_max_outage(
    app: Vigil, pool: ThreadPoolExecutor
) -> None:
    url = f"rtmp://127.0.0.1:{free_port()}/live/CAM-NEVER"
    policy = LivePolicy(max_s=60, max_outage_s=2, retry_s=1, io_timeout_s=2)
    started = time.monotonic()
    result = start_recording(pool, app, LiveSource(url, "push"), policy, threading.Event()).result(
        timeout=30
    )
    assert 2.0 <= time.monotonic() - started < 6.0
    assert (result.reason, result.segments, result.sessions) == ("camera lost", 0, 0)
    rec = app.catalog.recording(result.recording_id)
    assert rec.status == "unreadable"
    assert rec.damage is not None
    assert "no stream for 2 s" in rec.damage
    assert [a for a, _ in events(app, rec.id)] == ["ingest.live", "live.ended"]


@pytest.mark.ffmpeg
def test_a_stop_while_listening_ends_the_recording_at_once(
    app: Vigil, pool: ThreadPoolExecutor
) -> None:
    url = f"rtmp://127.0.0.1:{free_port()}/live/CAM-IDLE"
    stop = threading.Event()
    future = start_recording(pool, app, LiveSource(url, "push"), LivePolicy(), stop)
    time.sleep(1.0)
    stopped = time.monotonic()
    stop.set()
    result = future.result(timeout=30)
    assert time.monotonic() - stopped < 5.0  # SIGTERM, not the 5-minute outage budget
    assert result.reason == "stopped"
    assert app.tools.runner.live_count == 0


def test_a_push_is_received_on_rtmp_only() -> None:
    with pytest.raises(ValueError, match="rtmp://"):
        LiveSource("http://0.0.0.0:8080/cam", "push")
    assert LiveSource("rtsp://cam/stream").mode == "pull"


@pytest.mark.parametrize(
    "bad",
    [
        {"max_s": 0},
        {"max_outage_s": -1},
        {"retry_s": 0},
        {"io_timeout_s": 0},
    ],
)
def test_a_policy_rejects_meaningless_limits(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        LivePolicy(**bad)


def test_a_policy_without_outage_budget_does_not_reconnect() -> None:
    assert LivePolicy().reconnect
    assert not LivePolicy(max_outage_s=0).reconnect
