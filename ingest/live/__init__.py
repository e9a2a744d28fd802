"""Live streams: segments stored, catalogued and announced while the stream is still recording,
and one recording kept across the camera's disconnects, with each outage a recorded gap.

Sources (``LiveSource``):

- **pull**: any URL ffmpeg reads (``rtsp://``, ``http(s)://``, ``tcp://``, a pull from an RTMP
  server, a file). When the stream is lost the recorder pulls again at once, then every
  ``LivePolicy.retry_s``, until the camera is back or ``LivePolicy.max_outage_s`` has passed.
- **push**: Vigil listens on ``rtmp://HOST:PORT/APP/KEY`` (ffmpeg ``-listen 1``); the camera
  connects and publishes. When it disconnects the listening ffmpeg exits, and the recorder
  listens again at once.

One **session** is one ffmpeg run that received footage. Each writes ~``segment_s`` MPEG-TS
segments, the stream as received, and one line per video packet on stdout (``framecrc``,
flushed per packet), which the receiving thread stamps with the server's monotonic clock as
it reads it. Each segment, once closed, is hashed, stored, chained and catalogued, and a
``segment.stored`` message goes out at once, so the perceptual workers run while the camera is
still recording. Segment indices and the hash chain run on across sessions.

**The recording's timeline across sessions.** A new session's timestamps start over (a new
RTMP publisher starts at 0), so its place on the timeline comes from the server clock. For
every video packet the receiver knows its arrival time ``S`` and its ``pts``. A frame cannot
arrive before it was captured, and a live source sends in real time, so ``S - pts`` is the
session's clock offset plus that packet's latency (encoder, network, ffmpeg), and its minimum
``D`` over the session's first segment is the tightest bound the stream gives: reached by the
packets that came quickest, never lowered by a burst (the first seconds, which ffmpeg holds
while it probes the stream, a relay's GOP cache, a stall): those only arrive late. A frame at
``pts`` of session k is put at ``pts + D_k`` on the server clock, so on the recording's
timeline (zero = the first frame of session 1) at ``pts + (D_k - D_1) - origin_s``; session
k's segments are remuxed with their timestamps moved by ``D_k - D_1`` (``retime_command``:
packets untouched), so every segment of the recording is on one timeline with one
``origin_s``, as the perceptual hashing, verification and export expect. The outage is then
the gap between the last segment of one session and the first of the next, where the case
timeline shows it. Its error is the difference between the two sessions' least latencies (the
same camera over the same path: milliseconds) plus the camera's clock-rate drift over a
session (50 ppm is 0.18 s an hour). Measured on loopback: gaps within 0.01 s of the gap in an
encoder's own clock (an encoder kept running behind a link that was cut and restored), and
sessions of restarted publishers within 0.005 s of where the publishers' own progress reports
put them. Rejected alternatives: the server time when a session connected or its first
segment file appeared (ffmpeg first probes the stream, seconds during which nothing is
written: about 3 s for a 15 fps RTMP publisher), and ``-use_wallclock_as_timestamps`` (it
would replace the evidence's own timestamps with arrival times, network jitter included).
The device clock is unknown for a live stream: unless the caller gives ``device_start``, it
is set to the server time of the timeline's zero.

The receiver also watches for a session that receives nothing for ``io_timeout_s`` (a camera
that lost power or network leaves its connection open; ffmpeg's own ``-rw_timeout`` noticed
it only after about twice its value) and ends it as a disconnect. ffmpeg's RTMP listener does
not check APP/KEY (a publish to another key is only logged), and between a disconnect and the
next listen (about 0.1-0.2 s) a publisher is refused and must retry.

Every disconnect and reconnect is a custody event (``live.disconnected``,
``live.reconnected``), and so is the end of the recording (``live.ended``, with why). The
original is the stream as received: every session's segment files, as ffmpeg wrote them,
appended in order to one ``original.ts`` (a concatenation of MPEG-TS streams is an MPEG-TS
stream; ffmpeg reads every packet of it, its timestamps starting over at each session). ffmpeg
writes each packet once, into its segment; each ``segment.stored`` event signs where the
segment's bytes are in the original (``source``), so a change to the original is named down to
its segment, and a segment whose copy is not kept is read back from those bytes (issue 18). It
is stored when the recording ends, with its hash.

The chain cannot start from the original's hash (it is complete only at the end), so a live
recording's chain starts from an anchor fixed when recording begins; the original's hash is
recorded when it ends.

Modules: ``policy`` (what the caller asks and gets back: ``LiveSource``, ``LivePolicy``,
``LiveResult``), ``recorder`` (``LiveRecorder``), ``receiver`` (the receiving thread: the
ffmpeg sessions and their packets' arrival times), ``storing`` (the calling thread: the
segments placed on the timeline, stored, and the custody events), ``details`` (those events'
details).
"""

from __future__ import annotations

from ingest.live.details import (
    DisconnectedDetail,
    LiveDetail,
    LiveEndedDetail,
    OriginalDetail,
    ReconnectedDetail,
)
from ingest.live.policy import LivePolicy, LiveResult, LiveSource, SourceMode, StopReason
from ingest.live.recorder import LiveRecorder

__all__ = [
    "DisconnectedDetail",
    "LiveDetail",
    "LiveEndedDetail",
    "LivePolicy",
    "LiveRecorder",
    "LiveResult",
    "LiveSource",
    "OriginalDetail",
    "ReconnectedDetail",
    "SourceMode",
    "StopReason",
]
