"""Pure functions that build every ffmpeg command line Vigil runs.

Each returns a ``list[str]`` whose first element is the ffmpeg executable; tests check the
lists, ``transcode.ffmpeg.ProcessRunner`` runs them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import ffmpeg as ffmpeg_python
from vigil_verify.packets import Stream, packet_hash_output
from vigil_verify.sampling import upright_filter

from transcode.proxy_settings import ProxySettings

VideoPlan = Literal["copy", "h264"]
AudioPlan = Literal["copy", "aac", "none"]
Media = Literal["video", "audio"]
_FIRST: dict[Media, str] = {"video": "v", "audio": "a"}

BASE = ["-hide_banner", "-nostdin", "-nostats"]
PROGRESS = ["-progress", "pipe:2"]


SegmentContainer = Literal["mpegts", "matroska"]

SEGMENT_EXTENSIONS: dict[SegmentContainer, str] = {"mpegts": "ts", "matroska": "mkv"}


@dataclass(frozen=True)
class SegmentJob:
    """Cut a source into evidence segments by stream copy: every packet kept as recorded.

    MPEG-TS when it can carry the source's codecs (what HLS plays); Matroska otherwise (it
    carries any codec: MS-MPEG4, Cinepak, PCM audio...), with the review proxy made apart.
    """

    source: Path
    out_dir: Path
    segment_s: float
    container: SegmentContainer = "mpegts"
    audio: bool = True
    cuts: tuple[int, ...] | None = None  # packets of the cut stream where segments 1... start
    video: bool = True  # False: an audio-only source, cut on its audio packets
    # also list every packet of these streams, hashed, in ``packets_list`` (issue 18)
    packets: tuple[Stream, ...] = ()
    # the same second output, to the ``null`` muxer: a cut again needs custody's command, not
    # its listing (``derive_segments``), and nothing is hashed
    packets_discarded: bool = False

    @property
    def packets_list(self) -> Path:
        return self.out_dir / "packets.framehash"

    @property
    def media(self) -> Media:
        """The stream the cuts are counted on: the video, or the audio of an audio-only
        source (the segment muxer's reference stream either way)."""
        return "video" if self.video else "audio"

    @property
    def extension(self) -> str:
        return SEGMENT_EXTENSIONS[self.container]

    @property
    def pattern(self) -> Path:
        return self.out_dir / f"seg-%05d.{self.extension}"

    @property
    def segment_list(self) -> Path:
        return self.out_dir / "segments.csv"


@dataclass(frozen=True)
class ProxyJob:
    """Make the browser-playable review proxy (H.264/AAC in HLS MPEG-TS) of a source."""

    source: Path
    out_dir: Path
    segment_s: float
    audio: AudioPlan
    proxy: ProxySettings = ProxySettings()
    video: bool = True  # False: an audio-only source gets an audio-only (AAC) proxy
    size: tuple[int, int] | None = None  # the source's picture (what the bitrate cap scales by)
    fps: float | None = None  # its frame rate (with ``size``: which preset)
    source_kbps: float | None = None  # its file's mean bitrate (what else caps the proxy's)

    @property
    def preset(self) -> str:
        return self.proxy.preset_for(self.size, self.fps)

    @property
    def maxrate_kbps(self) -> int | None:
        """The video's bitrate cap (None: the picture's size is not known, no cap)."""
        if self.size is None:
            return None
        return self.proxy.maxrate_kbps(*self.size, self.source_kbps)

    @property
    def pattern(self) -> Path:
        return self.out_dir / "proxy-%05d.ts"

    @property
    def segment_list(self) -> Path:
        return self.out_dir / "proxy.csv"


def sniff_command(ffmpeg: str, source: Path) -> list[str]:
    """Read the container header and one video and one audio packet: is this readable video
    or audio at all? With neither stream, ffmpeg exits saying its output has no stream."""
    return [
        ffmpeg, *BASE, "-i", str(source), "-map", "0:v:0?", "-map", "0:a:0?", "-c", "copy",
        "-frames:v", "1", "-frames:a", "1", "-f", "framecrc", "-",
    ]  # fmt: skip


def probe_command(ffmpeg: str, source: Path, *, keyframes_to: Path | None = None) -> list[str]:
    """Every video and audio packet's timing, size and key flag, without decoding.

    ``framecrc`` prints the codec, dimensions and time base of each stream, then one line per
    packet; it works with any ffmpeg build, including those shipped without ffprobe.
    ``-copyts`` keeps the file's own timestamps so that segment times line up with it.

    With ``keyframes_to``, the same run also writes the keyframes as in ``keyframes_command``
    (64x64 gray, ``showinfo`` times on stderr) to that file: one process instead of two for a
    live segment. ``-skip_frame`` only concerns the decoder; the packet listing is a copy.
    """
    if keyframes_to is None:
        return [
            ffmpeg, *BASE, "-copyts", "-i", str(source),
            "-map", "0:v?", "-map", "0:a?", "-c", "copy", "-f", "framecrc", "-",
        ]  # fmt: skip
    return [
        ffmpeg, *BASE, *KEYFRAMES_ONLY, "-copyts", "-i", str(source),
        "-map", "0:v?", "-map", "0:a?", "-c", "copy", "-f", "framecrc", "-",
        *_keyframe_output(64), "-y", str(keyframes_to),
    ]  # fmt: skip


UNSHIFTED = ["-map", "0:v:0", "-map", "0:a?"]
"""Read a segment's audio tracks (every one) along with its video, as the segmenter wrote
them, whenever its video timing is measured. With ``-copyts``, ffmpeg 5.1 moves the kept
streams of an MPEG-TS input whose start time is exactly 0 to start at 0 when it drops a stream
that starts earlier ("Correcting start time", ``process_input`` in ffmpeg.c): the first
segment of a fragmented MP4 whose audio starts 0.067 s before its video would read 0.067 s
early, and only that one; so would one whose second audio track starts first, were it
dropped."""


def first_packet_command(ffmpeg: str, source: Path, media: Media = "video") -> list[str]:
    """The first video packet of ``source`` (file order) on its own timestamps: where a
    stream-copied segment's timeline sits against its source's.

    The audio is read too (``UNSHIFTED``), and ``-frames:v 1`` ends the run at the first
    video packet all the same. ``media="audio"``: the first audio packet of an audio-only
    file's first audio track (output stream 0, whose first packet ends the run), its other
    tracks read along for the same reason.
    """
    if media == "audio":
        return [
            ffmpeg, *BASE, "-copyts", "-i", str(source), "-map", "0:a",
            "-c", "copy", "-frames:a:0", "1", "-f", "framecrc", "-",
        ]  # fmt: skip
    return [
        ffmpeg, *BASE, "-copyts", "-i", str(source), *UNSHIFTED,
        "-c", "copy", "-frames:v", "1", "-f", "framecrc", "-",
    ]  # fmt: skip


def probe_video_many_command(
    ffmpeg: str, sources: Sequence[Path], media: Media = "video"
) -> list[str]:
    """Like ``probe_command`` for the video of several files in one run: output stream i is
    the first video stream of ``sources[i]`` (one process instead of one per segment); all
    their audio tracks follow, read only so that no stream read is moved (``UNSHIFTED``).
    ``media="audio"``: output stream i is the first audio stream of audio-only
    ``sources[i]``; every audio track of each follows for the same reason (the first one
    again: a stream cannot be mapped "all but the first")."""
    cmd = [ffmpeg, *BASE, "-copyts"]
    for source in sources:
        cmd += ["-i", str(source)]
    for index in range(len(sources)):
        cmd += ["-map", f"{index}:{_FIRST[media]}:0"]
    for index in range(len(sources)):
        cmd += ["-map", f"{index}:a?"]
    return [*cmd, "-c", "copy", "-f", "framecrc", "-"]


MAX_CUT_LIST = 120_000
"""Longest ``-segment_frames`` list (characters) given to ffmpeg: Linux refuses a single
argument over 128 KiB. About 40 hours of 30 fps footage in 10 s segments."""


NO_CUT = 2**31 - 2
"""A packet number no recording reaches (ffmpeg takes numbers below INT_MAX): one segment."""


def segment_frames(cuts: Sequence[int]) -> str | None:
    """The ``-segment_frames`` value for segments starting at video packets ``cuts`` (each
    number counted as ffmpeg counts the packets of the video stream, from 0), or None when the
    list would be too long for one argument."""
    text = ",".join(str(c) for c in cuts) if cuts else str(NO_CUT)
    return text if len(text) <= MAX_CUT_LIST else None


def segment_command(ffmpeg: str, job: SegmentJob) -> list[str]:
    """Cut ``job.source`` into segments by stream copy.

    With ``job.cuts`` (see ``transcode.timing.plan_cuts``), a segment starts at each of those
    video packets, all keyframes: where the recording's own footage time says, whatever its
    timestamps do (an empty list: one segment). With None, at the first keyframe at or after
    each multiple of ``segment_s`` of the source's timestamps: ffmpeg's own rule, which
    counts from timestamp 0, not from the first packet, so a source starting at 1000 s, or
    jumping ahead by an hour, gets a segment per keyframe until the count catches up.

    An audio-only source (``job.video`` False) is cut the same way on its audio packets,
    each a key packet; the segment muxer counts them, its reference stream being the first
    audio track when no video is mapped.

    Every audio track is kept (``-map 0:a``), each byte-copied: a recording's second
    microphone or its commentary is evidence as much as the first.

    The packets are copied untouched, so no frame is decoded. Timestamps are kept
    (``-copyts``, no mux delay) so each segment's PTS are the source's own; Matroska gets
    ``+genpts`` for sources (AVI with B-frames) whose packets carry no PTS, which it cannot
    store. Each segment is listed in ``segments.csv`` as it closes.

    With ``job.packets``, the same run also lists every packet of those streams, in canonical
    form and hashed (``vigil_verify.packets``), in ``packets.framehash``: the original is read
    once for both (issue 18).
    """
    genpts = ["-fflags", "+genpts"] if job.container == "matroska" else []
    cmd = [ffmpeg, *BASE, *PROGRESS, *genpts, "-copyts", "-i", str(job.source)]
    if not job.video:
        cmd += ["-map", "0:a"]  # an audio-only source: cut on its (first track's) packets
    else:
        cmd += ["-map", "0:v:0", *(["-map", "0:a?"] if job.audio else [])]
    # MPEG-TS segments are the same bytes on every run of the same ffmpeg; Matroska writes
    # random UIDs unless told to be bit-exact: with it, a segment can be cut again from the
    # original, byte for byte (``transcode.segmenter.derive_segments``, issue 18)
    muxer = (
        ["-muxdelay", "0", "-muxpreload", "0"]
        if job.container == "mpegts"
        else ["-fflags", "+bitexact"]
    )
    listed = segment_frames(job.cuts) if job.cuts is not None else None
    when = ["-segment_frames", listed] if listed else ["-segment_time", f"{job.segment_s:g}"]
    return [
        *cmd, "-c", "copy",
        "-f", "segment", *when,
        "-segment_format", job.container, *muxer,
        "-segment_list", str(job.segment_list), "-segment_list_type", "csv",
        "-reset_timestamps", "0", "-y", str(job.pattern),
        *(_listing(job) if job.packets else []),
    ]  # fmt: skip


def _listing(job: SegmentJob) -> list[str]:
    """The segmenting run's second output: every packet listed, hashed (custody's cut), or the
    same output thrown away (a cut again, which must run custody's very command)."""
    listed = packet_hash_output(job.packets)
    if job.packets_discarded:
        return [*listed[: listed.index("-f")], "-f", "null", "-"]
    return [*listed, "-y", str(job.packets_list)]


def proxy_command(ffmpeg: str, job: ProxyJob) -> list[str]:
    """Transcode ``job.source`` into the review proxy: H.264 (x264 with ``job.proxy``) and
    AAC, in HLS MPEG-TS segments with a keyframe forced at every boundary.

    One output frame per source frame (``-fps_mode passthrough``: nothing invented or dropped,
    even for variable-rate sources), on the source's own timestamps (``-copyts``, no mux
    delay), so the proxy lines up with the evidence segments. ``+genpts`` gives AVI packets
    without PTS their times. An audio-only source (``job.video`` False) gets an audio-only
    proxy: its audio as AAC (or copied when a browser plays it), cut on audio packets.
    """
    p = job.proxy
    cmd = [ffmpeg, *BASE, *PROGRESS, "-fflags", "+genpts", "-copyts", "-i", str(job.source)]
    if not job.video:
        if job.audio == "none":
            raise ValueError("an audio-only proxy needs the source's audio")
        cmd += ["-map", "0:a:0", "-vn", "-sn", "-dn"]
    else:
        cmd += ["-map", "0:v:0", *(["-map", "0:a:0?"] if job.audio != "none" else [])]
        cmd += [
            "-c:v", "libx264", "-preset", job.preset, "-crf", str(p.crf),
            "-pix_fmt", "yuv420p", "-profile:v", "high", "-fps_mode", "passthrough",
            "-threads", str(p.threads),
            "-force_key_frames", f"expr:gte(t,n_forced*{job.segment_s:g})",
        ]  # fmt: skip
        cap = job.maxrate_kbps
        if cap is not None:  # (size unknown: no cap)
            cmd += ["-maxrate", f"{cap}k", "-bufsize", f"{2 * cap}k"]
    if job.audio == "copy":
        cmd += ["-c:a", "copy"]
    elif job.audio == "aac":
        cmd += ["-c:a", "aac", "-b:a", p.audio_bitrate, "-ac", "2"]
    return [
        *cmd, "-f", "segment", "-segment_time", f"{job.segment_s:g}",
        "-segment_format", "mpegts", "-muxdelay", "0", "-muxpreload", "0",
        "-segment_list", str(job.segment_list), "-segment_list_type", "csv",
        "-reset_timestamps", "0", "-y", str(job.pattern),
    ]  # fmt: skip


KEYFRAMES_ONLY = ["-skip_frame", "nokey", "-threads", "1"]
"""The decoder options (before ``-i``) of a keyframe-only decode. One decoding thread: with
every other frame skipped, frame threads only add hand-over work (a 5-minute 1080p H.264 clip:
3.6 s CPU and wall on one thread, 3.9 s CPU and 4.3–4.5 s wall with ffmpeg's default threads;
HEVC, 4K H.264 and MPEG-4 alike), and the other core is busy with the rest of custody. The
decoded pictures are the same bytes either way."""


def _keyframe_output(side: int, turn: str = "") -> list[str]:
    graph = f"scale={side}:{side}:flags=area,format=gray,showinfo"
    return [
        "-map", "0:v:0", "-an", "-sn", "-fps_mode", "passthrough",
        "-vf", f"{turn},{graph}" if turn else graph,
        "-f", "rawvideo", "-pix_fmt", "gray",
    ]  # fmt: skip


def keyframes_command(ffmpeg: str, source: Path, *, side: int = 64, rotation: int = 0) -> list[str]:
    """Decode only the keyframes of ``source``'s video to ``side``x``side`` gray, raw on stdout.

    ``-skip_frame nokey`` makes the decoder skip every other frame (hundreds of times realtime,
    see ../shared/HASHING.md), on one thread (``KEYFRAMES_ONLY``); ``-fps_mode passthrough``
    stops the output from repeating them to the full frame count. ``showinfo`` logs each
    output frame's ``pts_time`` on stderr, on the file's own timestamps (``-copyts``), so each
    hash gets its true time. Scaling is the area averaging of the dense index, so the two are
    comparable.

    Orientation as in ``vigil_verify.sampling.frame_decode_args``: ``rotation`` 0 leaves
    ffmpeg's autorotation on; a stored segment's catalogued ``rotation`` switches it off and
    applies that turn, so keyframes are hashed as displayed either way.
    """
    turn = upright_filter(rotation)
    return [
        ffmpeg, *BASE, *KEYFRAMES_ONLY, "-copyts",
        *(["-noautorotate"] if turn else []), "-i", str(source),
        *_keyframe_output(side, turn), "pipe:1",
    ]  # fmt: skip


LIVE_SEGMENT_PATTERN = "seg-%05d.ts"
LIVE_SEGMENT_GLOB = "seg-?????.ts"
"""A live session's segment files, in the order ffmpeg writes them (and to find them)."""


def _live_outputs(out_dir: Path, segment_s: float) -> list[str]:
    return [
        "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", "-f", "segment",
        "-segment_time", f"{segment_s:g}",
        "-segment_format", "mpegts", "-muxdelay", "0", "-muxpreload", "0",
        "-segment_list", str(out_dir / "segments.csv"), "-segment_list_type", "csv",
        "-reset_timestamps", "0", "-y", str(out_dir / LIVE_SEGMENT_PATTERN),
    ]  # fmt: skip


def live_command(ffmpeg: str, source: str, out_dir: Path, *, segment_s: float) -> list[str]:
    """Record a live stream: MPEG-TS segments as it goes, the stream as received.

    A stream copy on the stream's own timestamps into ~``segment_s`` segments cut on
    keyframes (each listed in ``segments.csv`` when it closes, which is when it may be
    stored). Every packet goes into exactly one segment, so the segments one after the other
    are the stream as received: the recording's original is made of them (issue 18: each
    packet is written once).
    """
    return [ffmpeg, *BASE, "-copyts", "-i", source, *_live_outputs(out_dir, segment_s)]


LIVE_ARRIVALS = ["-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-flush_packets", "1", "pipe:1"]
"""The third output of a live session: one ``framecrc`` line per video packet on stdout,
flushed per packet, so the reader can note the server time each packet arrived."""


def _microseconds(seconds: float) -> str:
    return str(max(1, round(seconds * 1e6)))


def live_pull_command(
    ffmpeg: str,
    url: str,
    out_dir: Path,
    *,
    segment_s: float,
    io_timeout_s: float,
    rtsp_transport: str = "tcp",
) -> list[str]:
    """One session of a pulled live stream (``rtsp://``, ``http(s)://``, ``tcp://``, a pull
    from an RTMP server...): the outputs of ``live_command`` plus ``LIVE_ARRIVALS``.

    A dead source must end the session instead of hanging it, so that the recorder can note
    the disconnect and pull again. The I/O timeout is ``io_timeout_s``, given the way each
    protocol understands it:

    - RTSP is a demuxer that opens its own sockets, so the generic ``-rw_timeout`` does not
      reach them; its ``-timeout`` is the socket I/O timeout (µs). ``-rtsp_transport tcp``
      (by default) interleaves the media in the RTSP connection: no packet lost to UDP, no
      NAT or firewall holes, and a dead camera is a dead TCP connection that times out.
    - Everything else gets ``-rw_timeout`` (µs), the I/O timeout of every URL protocol. Not
      ``-timeout``: its meaning changes by protocol (for ``rtmp://`` it is a listen timeout
      in seconds and turns the pull into a listener; for http/tcp it is a socket timeout).

    ffmpeg's own reconnect options (``-reconnect`` for HTTP) are left off on purpose: a
    reconnect hidden inside ffmpeg would join two sessions without a trace, whereas the
    recorder records each loss as a gap with its custody events.
    """
    scheme = url.partition("://")[0].lower() if "://" in url else "file"
    timeout = _microseconds(io_timeout_s)
    if scheme in ("rtsp", "rtsps"):
        options = ["-rtsp_transport", rtsp_transport, "-timeout", timeout]
    else:
        options = ["-rw_timeout", timeout]
    return [
        ffmpeg, *BASE, *options, "-copyts", "-i", url,
        *_live_outputs(out_dir, segment_s), *LIVE_ARRIVALS,
    ]  # fmt: skip


def live_listen_command(
    ffmpeg: str,
    url: str,
    out_dir: Path,
    *,
    segment_s: float,
    io_timeout_s: float,
    wait_s: float | None,
) -> list[str]:
    """One session of a pushed stream: listen on ``rtmp://HOST:PORT/APP/KEY`` until one
    camera publishes, record it (the outputs of ``live_command`` plus ``LIVE_ARRIVALS``) and
    exit when it disconnects; the recorder then listens again at once.

    - ``-listen 1``: ffmpeg's RTMP server mode; it accepts one publisher, then reads its FLV.
    - ``-timeout`` (RTMP: whole seconds to wait for that publisher, rounded up; omitted with
      ``wait_s=None``: wait for ever) bounds the wait for the camera, so that a camera that
      never comes back ends the session by itself.
    - ``-rw_timeout`` (µs) notices a publisher that has gone silent without closing its
      connection (power cut, network loss); it does not apply to the wait for a connection.

    ffmpeg's listener does not check APP/KEY (a publish to another key is only logged): who
    can publish is decided by who can reach the port.
    """
    if not url.lower().startswith("rtmp://"):
        raise ValueError(f"a pushed stream is received as rtmp://HOST:PORT/APP/KEY, not {url!r}")
    wait = ["-timeout", str(max(1, math.ceil(wait_s)))] if wait_s is not None else []
    return [
        ffmpeg, *BASE, "-rw_timeout", _microseconds(io_timeout_s), "-listen", "1", *wait,
        "-copyts", "-i", url, *_live_outputs(out_dir, segment_s), *LIVE_ARRIVALS,
    ]  # fmt: skip


def retime_command(ffmpeg: str, source: Path, dest: Path, *, shift_s: float) -> list[str]:
    """Copy MPEG-TS ``source`` to ``dest`` with every timestamp moved by ``shift_s``.

    Packets are copied untouched (``-c copy``); only their PTS/DTS change. With ``-copyts``
    the input offset ``-itsoffset`` is added to the file's own timestamps, and no mux delay
    is added, so a packet at t in ``source`` is at t + ``shift_s`` in ``dest`` (to the
    90 kHz tick). Used to put a live stream's later sessions, whose timestamps start over,
    on the recording's timeline.
    """
    return [
        ffmpeg, *BASE, "-copyts", "-itsoffset", f"{shift_s:.6f}", "-i", str(source),
        "-map", "0:v", "-map", "0:a?", "-c", "copy",
        "-f", "mpegts", "-muxdelay", "0", "-muxpreload", "0", "-y", str(dest),
    ]  # fmt: skip


def gray_frames_command(
    ffmpeg: str, source: Path, *, rate: float, start_time: float, copyts: bool, side: int = 64
) -> list[str]:
    """Decode ``source`` to ``side``x``side`` gray frames at a fixed ``rate``, raw on stdout.

    Scaling happens in ffmpeg with area averaging (see ../shared/HASHING.md: PDQ on
    ffmpeg-area-scaled 64x64 frames separates clean from altered best). Output frame k shows
    the picture at ``start_time + k / rate``, on the file's own timestamps with ``copyts``, else
    on a timeline that starts at 0. Anchoring the grid this way is what lets a copy decoded from
    0 and a segment decoded on the original's timestamps sample the same moments.
    """
    options = {"copyts": None} if copyts else {}
    stream = (
        ffmpeg_python.input(str(source), **options)
        .video.filter("fps", fps=f"{rate:g}", start_time=f"{start_time:.6f}")
        .filter("scale", side, side, flags="area")
        .filter("format", "gray")
        .output("pipe:", format="rawvideo", pix_fmt="gray", an=None, sn=None)
    )
    args: list[str] = stream.get_args()
    return [ffmpeg, *BASE, *args]
