"""``vigil services``' own logic, without starting a service: the env file it writes (read back
by a real shell and by the settings), the folders it refuses, its state file, and finding and
stopping a process again by PID (on real ``sleep`` processes)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from vigil_verify.errors import ErrorKind

from interfaces.devservices.base import ServiceError, cache_root, start_ticks
from interfaces.devservices.stack import (
    ENV_FILE,
    STATE_FILE,
    FolderRefused,
    ProcessRef,
    ServiceName,
    ServiceRecord,
    StackEnv,
    StackState,
    command_for,
    default_dir,
    down,
    one_line,
    read_state,
    render_env,
    stop_service,
    up,
    write_state,
)
from interfaces.errors import InterfaceError
from workers.settings import Settings

ENV = StackEnv(
    kafka_bootstrap="127.0.0.1:40001",
    s3_endpoint="127.0.0.1:40002",
    s3_access_key="vigil-0123456789abcd",
    s3_secret_key='a\'secret with $pecial "chars" `x`',
    catalog_url="postgresql+psycopg://vigil@127.0.0.1:40003/vigil",
    data_dir="/some where/data",
)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A real process leading its own process group, as ``up`` leaves each service."""
    proc = subprocess.Popen(["sleep", "120"], start_new_session=True)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _record(pid: int, name: ServiceName = "kafka", started: int | None = None) -> ServiceRecord:
    ticks = start_ticks(pid) if started is None else started
    assert ticks is not None
    ref = ProcessRef(pid=pid, started=ticks)
    return ServiceRecord(
        name=name, leader=ref, main=ref, stop_signal="SIGTERM", grace_s=5,
        address="127.0.0.1:1", log=f"{name}/{name}.log",
    )  # fmt: skip


# -- the env file -------------------------------------------------------------------------------


def test_the_env_file_sets_exactly_what_the_settings_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = render_env(ENV, tmp_path)
    path = tmp_path / "env"
    path.write_text(text)
    shown = subprocess.run(
        ["sh", "-c", f'. {shlex.quote(str(path))} && env -0'],
        capture_output=True, check=True, env={"PATH": os.environ["PATH"]},
    ).stdout.decode()  # fmt: skip
    exported = dict(item.split("=", 1) for item in shown.split("\0") if item.startswith("VIGIL_"))
    assert exported == ENV.variables()
    assert exported["VIGIL_S3_SECRET_KEY"] == ENV.s3_secret_key  # quoted, not interpreted

    for name in [n for n in os.environ if n.startswith("VIGIL_")]:
        monkeypatch.delenv(name)
    for name, value in exported.items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # type: ignore[call-arg]
    assert (settings.bus, settings.store) == ("kafka", "s3")
    assert settings.kafka_bootstrap == ENV.kafka_bootstrap
    assert settings.s3_endpoint == ENV.s3_endpoint
    assert settings.s3_access_key.get_secret_value() == ENV.s3_access_key
    assert settings.s3_secret_key.get_secret_value() == ENV.s3_secret_key
    assert settings.resolved_catalog_url == ENV.catalog_url
    assert settings.data_dir == Path(ENV.data_dir)


def test_the_env_file_names_how_to_stop_and_delete(tmp_path: Path) -> None:
    comments = [line for line in render_env(ENV, tmp_path).splitlines() if line.startswith("#")]
    assert any(f"vigil services down --dir {tmp_path}" in line for line in comments)
    assert command_for("down", default_dir()) == "vigil services down"
    assert command_for("up", Path("/a b")) == "vigil services up --dir '/a b'"


def test_the_default_folder_is_in_the_users_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_root() == tmp_path / "vigil"
    assert default_dir() == tmp_path / "vigil" / "services"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path.home() / ".cache" / "vigil"


# -- folders and the state file ---------------------------------------------------------------


def test_a_missing_or_empty_folder_has_no_state(tmp_path: Path) -> None:
    assert read_state(tmp_path / "new") is None
    assert read_state(tmp_path) is None


def test_a_foreign_non_empty_folder_is_refused_and_left_untouched(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("years of work")
    lines: list[str] = []
    with pytest.raises(FolderRefused, match="not empty and was not made by `vigil services up`"):
        up(tmp_path, lines.append)
    with pytest.raises(FolderRefused, match="not empty"):
        down(tmp_path, lines.append)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]
    assert lines == []
    assert issubclass(FolderRefused, InterfaceError)
    assert FolderRefused.kind is ErrorKind.CONFLICT
    assert ServiceError.kind is ErrorKind.UNAVAILABLE


def test_a_file_is_no_folder(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(FolderRefused, match="is not a folder"):
        read_state(tmp_path / "f")


def test_the_state_file_round_trips_and_a_foreign_one_is_refused(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    state = StackState().with_service(_record(sleeper.pid)).model_copy(update={"env": ENV})
    write_state(tmp_path, state)
    assert (tmp_path / STATE_FILE).stat().st_mode & 0o777 == 0o600
    assert read_state(tmp_path) == state
    assert state.services[0].alive

    (tmp_path / STATE_FILE).write_text('{"format": 2, "services": []}')
    with pytest.raises(FolderRefused, match="not a state file"):
        read_state(tmp_path)
    (tmp_path / STATE_FILE).write_text("not json")
    with pytest.raises(FolderRefused, match="not a state file"):
        read_state(tmp_path)


def test_up_when_up_says_so_and_starts_nothing(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    state = StackState(services=(_record(sleeper.pid),), env=ENV)
    write_state(tmp_path, state)
    found = up(tmp_path, print)
    assert found.already_up
    assert found.env == ENV
    assert read_state(tmp_path) == state


def test_a_partly_up_stack_is_refused(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    gone = _record(sleeper.pid, "seaweedfs", started=(start_ticks(sleeper.pid) or 0) + 1)
    write_state(tmp_path, StackState(services=(gone, _record(sleeper.pid)), env=ENV))
    with pytest.raises(FolderRefused, match=r"only partly up \(SeaweedFS \(S3\)\)"):
        up(tmp_path, print)
    assert sleeper.poll() is None
    assert (tmp_path / STATE_FILE).exists()


# -- processes by PID ---------------------------------------------------------------------------


def test_a_process_is_known_by_pid_and_start_time(sleeper: subprocess.Popen[bytes]) -> None:
    ref = ProcessRef.of(sleeper.pid, "sleep")
    assert ref.alive
    assert not ProcessRef(pid=sleeper.pid, started=ref.started + 1).alive  # a reused PID
    sleeper.kill()
    sleeper.wait()
    assert not ref.alive
    with pytest.raises(ServiceError, match="exited right after it started"):
        ProcessRef.of(sleeper.pid, "sleep")


def test_down_stops_the_recorded_processes_and_deletes_the_folder(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    folder = tmp_path / "stack"
    (folder / "kafka").mkdir(parents=True)
    (folder / "kafka" / "kafka.log").write_text("log")
    (folder / ENV_FILE).write_text(render_env(ENV, folder))
    write_state(folder, StackState(services=(_record(sleeper.pid),), env=ENV))
    lines: list[str] = []
    assert down(folder, lines.append)
    assert sleeper.wait(timeout=10) == -15  # SIGTERM
    assert not folder.exists()
    assert lines == ["stopping Kafka"]
    assert not down(folder, lines.append)


def test_stop_kills_what_ignores_its_signal(tmp_path: Path) -> None:
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
         " print('ready', flush=True); time.sleep(120)"],
        start_new_session=True, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
        record = _record(stubborn.pid).model_copy(update={"grace_s": 0.5})
        stop_service(record)
        assert stubborn.wait(timeout=10) == -9
    finally:
        if stubborn.poll() is None:
            stubborn.kill()
        stubborn.wait()


def test_up_and_down_on_a_foreign_folder_fail_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    for verb in ("up", "down"):
        result = subprocess.run(
            [sys.executable, "-m", "interfaces.cli", "services", verb, "--dir", str(tmp_path)],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"error: {tmp_path} is not empty and was not made by")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_down_clears_what_a_failed_up_or_a_reboot_left(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    folder = tmp_path / "stack"
    folder.mkdir()
    gone = _record(sleeper.pid, started=(start_ticks(sleeper.pid) or 0) + 1)
    write_state(folder, StackState(services=(gone,)))  # no env: that up never finished
    lines: list[str] = []
    assert down(folder, lines.append)
    assert not folder.exists()
    assert lines == []  # nothing was running
    assert sleeper.poll() is None  # the process now holding that PID is not ours: left alone


def test_a_tools_failure_is_told_in_one_line_with_its_reason() -> None:
    failed = ServiceError("initdb failed:\nsome preamble\n\ninitdb: error: disk full\n")
    assert one_line(failed) == "initdb failed: initdb: error: disk full"
    assert one_line(ServiceError("Kafka at 127.0.0.1:1 not ready after 90 s\n[log tail]")) == (
        "Kafka at 127.0.0.1:1 not ready after 90 s"
    )
    assert one_line(OSError()) == "OSError"
    assert len(one_line(ServiceError("x" * 1000))) == 240
