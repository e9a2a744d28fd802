"""Unit tests for transcode.ffmpeg: ProcessRunner on stand-in Python processes, redact,
find_ffmpeg."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from transcode.ffmpeg import (
    STDERR_HEAD_LINES,
    STDERR_TAIL_LINES,
    FfmpegFailed,
    FfmpegNotFound,
    FfmpegTimeout,
    FinishedRun,
    ProcessRunner,
    RunnerStopped,
    find_ffmpeg,
    redact,
)

SLEEP_FOREVER = "import time; time.sleep(60)"


def py(code: str) -> list[str]:
    """A stand-in process: this Python running ``code``."""
    return [sys.executable, "-c", code]


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


@pytest.fixture
def runner() -> ProcessRunner:
    return ProcessRunner(default_timeout_s=30, grace_s=1.0)


# -- redact -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rtsp://admin:s3cret@10.0.0.5:554/live", "rtsp://***@10.0.0.5:554/live"),
        (
            "Input #0, rtsp, from 'rtsps://cam-user:p4ss!word@cams.example/stream1':",
            "Input #0, rtsp, from 'rtsps://***@cams.example/stream1':",
        ),
        (
            "srt://a:b@h1 and https://u:v@h2/x",
            "srt://***@h1 and https://***@h2/x",
        ),
        ("rtsp://10.0.0.5/live", "rtsp://10.0.0.5/live"),
        ("no urls here: key=value", "no urls here: key=value"),
    ],
)
def test_redact_strips_user_and_password_from_urls(text: str, expected: str) -> None:
    assert redact(text) == expected


# -- run: success, failure, check=False -------------------------------------------------------


def test_run_captures_stdout_and_returns_zero(runner: ProcessRunner) -> None:
    result = runner.run(
        py("import sys; sys.stdout.buffer.write(b'x' * 300000); sys.stderr.write('done\\n')"),
        capture_stdout=True,
    )
    assert result.returncode == 0
    assert result.stdout == b"x" * 300000  # more than a pipe buffer: no deadlock
    assert result.stderr_tail == "done"
    assert result.elapsed_s > 0
    assert runner.live_count == 0


def test_run_without_capture_discards_stdout(runner: ProcessRunner) -> None:
    result = runner.run(py("print('hello')"))
    assert result.stdout == b""
    assert result.returncode == 0


def test_nonzero_exit_raises_ffmpeg_failed_with_stderr_tail(runner: ProcessRunner) -> None:
    code = (
        "import sys\n"
        "sys.stderr.write('opening input\\n')\n"
        "sys.stderr.write('in.mp4: Invalid data found when processing input\\n')\n"
        "sys.exit(3)\n"
    )
    with pytest.raises(FfmpegFailed) as info:
        runner.run(py(code))
    exc = info.value
    assert exc.returncode == 3
    assert exc.stderr_tail.splitlines() == [
        "opening input",
        "in.mp4: Invalid data found when processing input",
    ]
    assert str(exc) == "ffmpeg exited with code 3: in.mp4: Invalid data found when processing input"
    assert exc.cmd == py(code)
    assert runner.live_count == 0


def test_nonzero_exit_without_stderr_says_no_output(runner: ProcessRunner) -> None:
    with pytest.raises(FfmpegFailed, match=r"code 1: no output"):
        runner.run(py("raise SystemExit(1)"))


def test_check_false_returns_the_returncode_and_output(runner: ProcessRunner) -> None:
    code = (
        "import sys; sys.stdout.write('partial')\n"
        "sys.stderr.write('moov atom not found\\n'); sys.exit(1)"
    )
    result = runner.run(py(code), capture_stdout=True, check=False)
    assert result.returncode == 1
    assert result.stdout == b"partial"
    assert result.stderr_tail == "moov atom not found"
    assert runner.live_count == 0


def test_missing_executable_raises_and_leaves_nothing_live(
    runner: ProcessRunner, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError):
        runner.run([str(tmp_path / "no-such-ffmpeg")])
    assert runner.live_count == 0


# -- timeouts ---------------------------------------------------------------------------------


def test_timeout_kills_the_process_and_raises_quickly(runner: ProcessRunner) -> None:
    started = time.monotonic()
    with pytest.raises(FfmpegTimeout) as info:
        runner.run(py(SLEEP_FOREVER), timeout_s=0.3)
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 2.0
    assert info.value.timeout_s == 0.3
    assert "longer than" in str(info.value)
    assert runner.live_count == 0


def test_timeout_applies_the_default_when_none_is_given() -> None:
    runner = ProcessRunner(default_timeout_s=0.3, grace_s=1.0)
    started = time.monotonic()
    with pytest.raises(FfmpegTimeout):
        runner.run(py(SLEEP_FOREVER))
    assert time.monotonic() - started < 2.0


def test_timeout_kills_a_process_that_ignores_sigterm() -> None:
    runner = ProcessRunner(default_timeout_s=30, grace_s=0.2)
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "sys.stderr.write('ready\\n'); sys.stderr.flush()\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    with pytest.raises(FfmpegTimeout):
        runner.run(py(code), timeout_s=0.4)
    assert time.monotonic() - started < 2.5
    assert runner.live_count == 0


def test_timeout_kills_the_whole_process_group(runner: ProcessRunner, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
        " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    with pytest.raises(FfmpegTimeout):
        runner.run(py(code), timeout_s=0.5)
    child_pid = int(pid_file.read_text())

    def gone() -> bool:
        try:
            stat = Path(f"/proc/{child_pid}/stat").read_text()
        except FileNotFoundError:
            return True
        return stat.rpartition(")")[2].split()[0] == "Z"  # a zombie is dead

    wait_until(gone, timeout=3)


# -- stop -------------------------------------------------------------------------------------


def test_stop_kills_a_running_process_from_another_thread(runner: ProcessRunner) -> None:
    outcome: list[BaseException] = []

    def work() -> None:
        try:
            runner.run(py(SLEEP_FOREVER))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=work)
    started = time.monotonic()
    thread.start()
    wait_until(lambda: runner.live_count == 1)
    runner.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 3.0
    assert len(outcome) == 1 and isinstance(outcome[0], RunnerStopped)
    assert runner.live_count == 0


def test_stopped_runner_refuses_new_processes(runner: ProcessRunner, tmp_path: Path) -> None:
    runner.stop()
    marker = tmp_path / "ran"
    with pytest.raises(RunnerStopped):
        runner.run(py(f"open({str(marker)!r}, 'w').close()"))
    with pytest.raises(RunnerStopped), runner.stream(py("pass")):
        pass  # pragma: no cover - never entered
    assert not marker.exists()
    assert runner.live_count == 0


def test_stop_during_process_start_still_stops_it(
    runner: ProcessRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_popen = subprocess.Popen

    def popen_racing_stop(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        runner.stop()  # another thread shuts the worker down right now
        return real_popen(*args, **kwargs)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr("transcode.ffmpeg.subprocess.Popen", popen_racing_stop)
    started = time.monotonic()
    try:
        runner.run(py("import time; time.sleep(5)"), timeout_s=10)
    except RunnerStopped:
        pass
    else:
        raise AssertionError("a process started while stopping ran to completion")
    # killed, not run out (5 s): with the margin of the test above, as a loaded CI machine
    # once took 0.41 s to start and kill a 0.5 s child (the bound was 0.4 s)
    assert time.monotonic() - started < 3.0


# -- stderr handling --------------------------------------------------------------------------


def test_stderr_tail_and_head_are_bounded(runner: ProcessRunner) -> None:
    code = "import sys\nfor i in range(500): sys.stderr.write(f'line {i} of output\\n')"
    result = runner.run(py(code))
    tail = result.stderr_tail.splitlines()
    head = result.stderr_head.splitlines()
    assert len(tail) == STDERR_TAIL_LINES
    assert tail[-1] == "line 499 of output"
    assert tail[0] == f"line {500 - STDERR_TAIL_LINES} of output"
    assert len(head) == STDERR_HEAD_LINES
    assert head[0] == "line 0 of output"


def test_credentials_are_redacted_in_stderr_and_error(runner: ProcessRunner) -> None:
    code = (
        "import sys\n"
        "sys.stderr.write(\"Input #0, rtsp, from 'rtsp://admin:hunter2@10.1.2.3/live':\\n\")\n"
        "sys.stderr.write('rtsp://admin:hunter2@10.1.2.3/live: Connection refused\\n')\n"
        "sys.exit(1)\n"
    )
    with pytest.raises(FfmpegFailed) as info:
        runner.run(py(code))
    assert "hunter2" not in info.value.stderr_tail
    assert "hunter2" not in str(info.value)
    assert "rtsp://***@10.1.2.3/live: Connection refused" in info.value.stderr_tail
    result = runner.run(py(code), check=False)
    assert "hunter2" not in result.stderr_head + result.stderr_tail
    assert result.stderr_head.startswith("Input #0, rtsp, from 'rtsp://***@10.1.2.3/live'")


def test_progress_lines_reach_the_callback_and_stay_out_of_the_tail(runner: ProcessRunner) -> None:
    code = (
        "import sys\n"
        "sys.stderr.write('Stream mapping:\\n')\n"
        "for us in ('0', '1500000', 'N/A', '3250000'):\n"
        "    sys.stderr.write(f'frame=12\\nfps=0.0\\nout_time_us={us}\\n'\n"
        "                     'out_time=00:00:01.500000\\nspeed=2.5x\\nprogress=continue\\n')\n"
        "sys.stderr.write('progress=end\\n')\n"
        "sys.stderr.write('video:5kB audio:4kB muxing overhead: unknown\\n')\n"
    )
    seen: list[float] = []
    result = runner.run(py(code), on_progress=seen.append)
    assert seen == [0.0, 1.5, 3.25]
    assert result.stderr_tail.splitlines() == [
        "Stream mapping:",
        "video:5kB audio:4kB muxing overhead: unknown",
    ]
    assert "out_time" not in result.stderr_head


# -- stream -----------------------------------------------------------------------------------


def test_stream_yields_stdout_to_read(runner: ProcessRunner) -> None:
    code = "import sys\nfor i in range(3): sys.stdout.write(f'frame {i}\\n')"
    with runner.stream(py(code)) as (out, pump):
        lines = out.read().decode().splitlines()
    assert lines == ["frame 0", "frame 1", "frame 2"]
    assert pump.text() == ""
    assert runner.live_count == 0


def test_stream_reports_a_failure_after_the_block(runner: ProcessRunner) -> None:
    status: list[int] = []
    with (
        pytest.raises(FfmpegFailed, match="broken"),
        runner.stream(
            py("import sys; sys.stderr.write('broken\\n'); sys.exit(2)"), status=status
        ) as (out, _pump),
    ):
        out.read()
    assert status == [2]


def test_leaving_stream_block_with_an_exception_kills_the_process(runner: ProcessRunner) -> None:
    code = "import sys\nwhile True: sys.stdout.buffer.write(b'\\0' * 4096)"
    started = time.monotonic()
    live_inside: list[int] = []

    def consume() -> None:
        with runner.stream(py(code), timeout_s=20) as (out, _pump):
            assert len(out.read(4096)) == 4096
            live_inside.append(runner.live_count)
            raise KeyError("consumer gave up")

    with pytest.raises(KeyError):
        consume()
    assert live_inside == [1]
    assert time.monotonic() - started < 3.0
    assert runner.live_count == 0


def test_closing_a_generator_over_stream_kills_the_process(runner: ProcessRunner) -> None:
    code = "import sys\nwhile True: sys.stdout.buffer.write(b'\\1' * 64)"

    def chunks() -> Iterator[bytes]:
        with runner.stream(py(code), timeout_s=20) as (out, _pump):
            while chunk := out.read(64):
                yield chunk

    started = time.monotonic()
    gen = chunks()
    assert next(gen) == b"\1" * 64
    assert runner.live_count == 1
    gen.close()
    assert time.monotonic() - started < 3.0
    assert runner.live_count == 0


def test_leaving_stream_block_early_without_exception_does_not_hang(runner: ProcessRunner) -> None:
    code = "import sys\nwhile True: sys.stdout.buffer.write(b'\\0' * 65536)"
    started = time.monotonic()
    with suppress_failed(), runner.stream(py(code), timeout_s=0.6) as (out, _pump):
        out.read(16)  # the consumer has what it needs and leaves
    assert time.monotonic() - started < 0.5
    assert runner.live_count == 0


class suppress_failed:
    """An exit error from the cut-off process is acceptable; a timeout is not."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        return kind is not None and issubclass(kind, FfmpegFailed)


# -- find_ffmpeg ------------------------------------------------------------------------------


def test_find_ffmpeg_uses_an_explicit_executable(tmp_path: Path) -> None:
    exe = tmp_path / "my-ffmpeg"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert find_ffmpeg(str(exe)) == str(exe)


def test_find_ffmpeg_refuses_a_non_executable(tmp_path: Path) -> None:
    plain = tmp_path / "ffmpeg.txt"
    plain.write_text("not a program")
    with pytest.raises(FfmpegNotFound):
        find_ffmpeg(str(plain))
    with pytest.raises(FfmpegNotFound):
        find_ffmpeg(str(tmp_path / "missing"))


def test_find_ffmpeg_prefers_the_system_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("transcode.ffmpeg.shutil.which", lambda name: f"/usr/bin/{name}")
    assert find_ffmpeg() == "/usr/bin/ffmpeg"


def test_every_finished_run_is_reported_even_when_it_fails() -> None:
    finished: list[FinishedRun] = []
    runner = ProcessRunner(on_finished=finished.append)
    runner.run(py("import time; time.sleep(0.2)"))
    with pytest.raises(FfmpegFailed):
        runner.run(py("import sys; sys.exit(3)"))
    assert [f.returncode for f in finished] == [0, 3]
    assert finished[0].wall_s >= 0.2
    assert finished[1].cmd == py("import sys; sys.exit(3)")


def test_a_failing_report_does_not_fail_the_run() -> None:
    def broken(_run: FinishedRun) -> None:
        raise RuntimeError("metrics backend down")

    assert ProcessRunner(on_finished=broken).run(py("pass")).returncode == 0
