"""``vigil services up|down``: a development Kafka (KRaft), an S3 store with Object Lock
(SeaweedFS) and PostgreSQL on one machine without Docker, each started exactly as the
integration tests start it (``KafkaService``, ``SeaweedService``, ``PostgresService``), all in
one folder DIR (default ``<cache_root()>/services``, i.e. ``~/.cache/vigil/services``):

    services.json               what runs: each service's PIDs, address and log (``StackState``)
    env                         the ``export VIGIL_…=…`` lines that point vigil at them (0600:
                                it holds the S3 secret key, random per ``up``)
    postgres/ seaweed/ kafka/   each service's data and log
    data/                       VIGIL_DATA_DIR of the processes pointed here (staging, dev keys)

The services outlive ``up``: each leads a process group of its own. ``down`` finds them again
by PID and start time (a PID the system has since given to another process is left alone),
stops them, and deletes DIR with all their data.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import psycopg
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from vigil_verify.errors import ErrorKind

from interfaces.devservices.base import (
    ServiceError,
    cache_root,
    child_pids,
    pid_alive,
    start_ticks,
)
from interfaces.devservices.kafka import KafkaService
from interfaces.devservices.postgres import PostgresService, create_named_database
from interfaces.devservices.seaweed import SeaweedService
from interfaces.errors import InterfaceError

STATE_FILE = "services.json"
ENV_FILE = "env"
DATABASE = "vigil"
"""The database ``up`` makes for the catalogue (the workers migrate it on their first start)."""

ServiceName = Literal["postgres", "seaweedfs", "kafka"]
TITLES: dict[ServiceName, str] = {
    "postgres": "PostgreSQL",
    "seaweedfs": "SeaweedFS (S3)",
    "kafka": "Kafka",
}
Say = Callable[[str], None]


class FolderRefused(InterfaceError):
    """DIR is not one ``vigil services`` may use: another's files, or services half up."""

    kind = ErrorKind.CONFLICT


def default_dir() -> Path:
    return cache_root() / "services"


def command_for(verb: str, folder: Path) -> str:
    """The ``vigil services VERB`` command line for ``folder`` (``--dir`` unless the default)."""
    same = folder.resolve() == default_dir().resolve()
    return f"vigil services {verb}" + ("" if same else f" --dir {shlex.quote(str(folder))}")


# -- what is recorded in DIR --------------------------------------------------------------------


class ProcessRef(BaseModel):
    """One process, named so that a later process given the same PID is not mistaken for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pid: int = Field(gt=0)
    started: int = Field(ge=0, description="Start time, clock ticks after boot (/proc/PID/stat).")

    @classmethod
    def of(cls, pid: int | None, what: str) -> ProcessRef:
        ticks = None if pid is None else start_ticks(pid)
        if pid is None or ticks is None:
            raise ServiceError(f"{what} exited right after it started")
        return cls(pid=pid, started=ticks)

    @property
    def alive(self) -> bool:
        return pid_alive(self.pid, self.started)


class ServiceRecord(BaseModel):
    """A running service: ``leader`` is what ``up`` started (the leader of its own process
    group), ``main`` the server that ``stop_signal`` asks to shut down (the leader itself, or
    PostgreSQL's postmaster when ``runuser`` runs it for root)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ServiceName
    leader: ProcessRef
    main: ProcessRef
    stop_signal: Literal["SIGTERM", "SIGINT"]
    grace_s: float = Field(gt=0, le=600)
    address: str
    log: str = Field(description="Its log file, relative to DIR.")
    outside: str | None = Field(
        default=None,
        description="A folder of its data outside DIR (PostgreSQL's, as root): deleted too.",
    )

    @property
    def title(self) -> str:
        return TITLES[self.name]

    @property
    def alive(self) -> bool:
        return self.leader.alive or self.main.alive


class StackEnv(BaseModel):
    """Where the services are, as the settings read it (``workers.settings.Settings``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kafka_bootstrap: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    catalog_url: str
    data_dir: str

    def variables(self) -> dict[str, str]:
        return {
            "VIGIL_BUS": "kafka",
            "VIGIL_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "VIGIL_STORE": "s3",
            "VIGIL_S3_ENDPOINT": self.s3_endpoint,
            "VIGIL_S3_ACCESS_KEY": self.s3_access_key,
            "VIGIL_S3_SECRET_KEY": self.s3_secret_key,
            "VIGIL_CATALOG_URL": self.catalog_url,
            "VIGIL_DATA_DIR": self.data_dir,
        }


class StackState(BaseModel):
    """``DIR/services.json``: the services started so far; ``env`` once all of them are up."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1] = 1
    services: tuple[ServiceRecord, ...] = ()
    env: StackEnv | None = None

    def with_service(self, record: ServiceRecord) -> StackState:
        return self.model_copy(update={"services": (*self.services, record)})


def render_env(env: StackEnv, folder: Path) -> str:
    """The env file: a comment on what it is, then one ``export NAME=value`` line per setting
    (quoted for a POSIX shell)."""
    lines = [
        f"# Vigil's development services in {folder} (vigil services up).",
        f"# `{command_for('down', folder)}` stops them and deletes all their data.",
        *(f"export {name}={shlex.quote(value)}" for name, value in env.variables().items()),
    ]
    return "\n".join(lines) + "\n"


def parse_state(text: str, folder: Path) -> StackState:
    try:
        return StackState.model_validate_json(text)
    except ValidationError:
        raise FolderRefused(
            f"{folder / STATE_FILE} is not a state file of this version of `vigil services`"
        ) from None


def read_state(folder: Path) -> StackState | None:
    """The state ``up`` recorded in ``folder``; None if there is none (no folder, an empty one);
    ``FolderRefused`` if the folder holds files that are not ``vigil services``' own."""
    if not folder.exists():
        return None
    if not folder.is_dir():
        raise FolderRefused(f"{folder} is not a folder")
    path = folder / STATE_FILE
    if path.is_file():
        return parse_state(path.read_text(), folder)
    if any(folder.iterdir()):
        raise FolderRefused(
            f"{folder} is not empty and was not made by `vigil services up`: give an empty or"
            " new folder with --dir"
        )
    return None


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole (aside, then renamed into place), readable by us alone."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(name, path)
    finally:
        Path(name).unlink(missing_ok=True)


def write_state(folder: Path, state: StackState) -> None:
    _write_private(folder / STATE_FILE, state.model_dump_json(indent=2) + "\n")


# -- stopping -----------------------------------------------------------------------------------


def _wait_gone(processes: list[ProcessRef], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while any(p.alive for p in processes):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def _send(pid: int, signum: int, *, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)


def stop_service(record: ServiceRecord) -> None:
    """Ask the service to shut down (its ``stop_signal``), wait its grace period, then SIGKILL
    what is left: the server, its children and the leader's process group."""
    processes = [record.main, record.leader]
    if not any(p.alive for p in processes):
        return
    own_group = record.main == record.leader
    target = record.main if record.main.alive else record.leader
    _send(target.pid, signal.Signals[record.stop_signal], group=own_group)
    if _wait_gone(processes, record.grace_s):
        return
    if record.main.alive:
        for pid in [record.main.pid, *child_pids(record.main.pid)]:
            _send(pid, signal.SIGKILL, group=False)
    if record.leader.alive:
        _send(record.leader.pid, signal.SIGKILL, group=True)
    if not _wait_gone(processes, 15):
        raise ServiceError(f"{record.title} (PID {record.main.pid}) did not stop")


def _remove_outside(outside: str) -> None:
    """Delete a service's data kept outside DIR: only a folder ``PostgresService`` made."""
    path = Path(outside)
    if path.name.startswith("vigil-pg-") and path.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(path, ignore_errors=True)


def clear(folder: Path, state: StackState, say: Say) -> None:
    """Stop every service ``state`` records (last started first) and delete all their data."""
    for record in reversed(state.services):
        if record.alive:
            say(f"stopping {record.title}")
        stop_service(record)
    for record in state.services:
        if record.outside is not None:
            _remove_outside(record.outside)
    shutil.rmtree(folder)


# -- starting -----------------------------------------------------------------------------------


def one_line(exc: BaseException, limit: int = 240) -> str:
    """An error in one line: its first, and for "X failed:" followed by a tool's output, that
    output's last line (where tools say why)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    first = lines[0]
    if first.endswith(":") and len(lines) > 1:
        first = f"{first} {lines[-1]}"
    return first if len(first) <= limit else first[: limit - 1] + "…"


class _Single(Protocol):
    """A service that runs as one process: SeaweedFS, Kafka."""

    @property
    def pid(self) -> int | None: ...

    @property
    def log(self) -> Path: ...

    def stop(self) -> None: ...


@dataclass
class _Startup:
    """One ``up``: starts the services one by one, recording each in DIR as soon as it runs,
    so that a failed or interrupted ``up`` leaves nothing ``down`` cannot find."""

    folder: Path
    say: Say
    state: StackState = field(default_factory=StackState)
    stops: list[Callable[[], None]] = field(default_factory=list)

    def record(self, stop: Callable[[], None], record: ServiceRecord) -> None:
        self.stops.append(stop)
        self.state = self.state.with_service(record)
        write_state(self.folder, self.state)

    @contextlib.contextmanager
    def step(self, name: ServiceName, log: Path) -> Iterator[None]:
        """Say what starts; turn its failure into one line naming its log (the details go in
        the log)."""
        title = TITLES[name]
        self.say(f"starting {title}")
        try:
            yield
        except (ServiceError, OSError, psycopg.Error) as exc:
            with contextlib.suppress(OSError):
                log.parent.mkdir(parents=True, exist_ok=True)
                with log.open("a") as handle:
                    handle.write(f"\nvigil services up: {exc}\n")
            raise ServiceError(f"{title} did not start: {one_line(exc)} (log: {log})") from None

    def postgres(self) -> str:
        pg = PostgresService(self.folder / "postgres")
        with self.step("postgres", pg.log):
            try:
                pg.start()
                main = ProcessRef.of(pg.postmaster_pid(), "PostgreSQL")
                leader = ProcessRef.of(pg.pid, "PostgreSQL")
            except BaseException:
                pg.destroy()  # its cluster too, which as root lies outside DIR
                raise
            record = ServiceRecord(
                name="postgres", leader=leader, main=main, stop_signal="SIGINT", grace_s=30,
                address=f"127.0.0.1:{pg.port}", log=str(pg.log.relative_to(self.folder)),
                outside=str(pg.data) if pg.run_as is not None else None,
            )  # fmt: skip
            self.record(pg.destroy, record)
            url = create_named_database(pg.url(), DATABASE)
        return url

    def seaweed(self) -> SeaweedService:
        s3 = SeaweedService(self.folder / "seaweed")
        with self.step("seaweedfs", s3.log):
            try:
                s3.start()
            except BaseException:
                s3.stop()  # a weed that never answered is still running
                raise
            self._recorded("seaweedfs", "SeaweedFS", s3, s3.endpoint, grace_s=10)
        return s3

    def kafka(self) -> KafkaService:
        kafka = KafkaService(self.folder / "kafka")
        if not (kafka.cache / kafka.version / "libs" / ".complete").exists():
            self.say(f"fetching Kafka {kafka.version}'s jars with Maven (once; a few minutes)")
        with self.step("kafka", kafka.log):
            kafka.start()  # stops its JVM itself when it does not come up
            self._recorded("kafka", "Kafka", kafka, kafka.bootstrap, grace_s=30)
        return kafka

    def _recorded(
        self, name: ServiceName, label: str, service: _Single, address: str, *, grace_s: float
    ) -> None:
        """Record a started one-process service (its own process group, stopped by SIGTERM);
        stop it if its process cannot be told apart."""
        try:
            ref = ProcessRef.of(service.pid, label)
        except BaseException:
            service.stop()
            raise
        record = ServiceRecord(
            name=name, leader=ref, main=ref, stop_signal="SIGTERM", grace_s=grace_s,
            address=address, log=str(service.log.relative_to(self.folder)),
        )  # fmt: skip
        self.record(service.stop, record)

    def run(self) -> StackEnv:
        catalog_url = self.postgres()
        s3 = self.seaweed()
        kafka = self.kafka()
        data = self.folder / "data"
        data.mkdir(exist_ok=True)
        return StackEnv(
            kafka_bootstrap=kafka.bootstrap,
            s3_endpoint=s3.endpoint,
            s3_access_key=s3.access_key,
            s3_secret_key=s3.secret_key,
            catalog_url=catalog_url,
            data_dir=str(data),
        )

    def abort(self) -> None:
        """Stop what this ``up`` started (the folder stays, with the logs)."""
        for stop in reversed(self.stops):
            with contextlib.suppress(Exception):
                stop()


@dataclass(frozen=True)
class Stack:
    """What ``up`` leaves: the folder, its env (as the env file has it), and whether the
    services were up already."""

    folder: Path
    env: StackEnv
    already_up: bool

    @property
    def env_text(self) -> str:
        return render_env(self.env, self.folder)


def _resume_or_clear(folder: Path, state: StackState, say: Say) -> Stack | None:
    """An ``up`` into a folder of an earlier one: the stack if it all runs; else clear what a
    failed ``up`` (or a reboot) left; ``FolderRefused`` if only part of it runs."""
    dead = [r.title for r in state.services if not r.alive]
    if state.env is not None and not dead:
        return Stack(folder, state.env, already_up=True)
    if any(r.alive for r in state.services):
        missing = ", ".join(dead) if dead else "not all started yet"
        down = command_for("down", folder)
        raise FolderRefused(
            f"the services in {folder} are only partly up ({missing}): `{down}` stops the rest"
            " and deletes their data; then `up` again"
        )
    say(f"deleting what stopped services left in {folder}")
    clear(folder, state, say)
    return None


def up(folder: Path, say: Say) -> Stack:
    """Start the three services into ``folder`` (made if missing; refused if it holds another's
    files), make the catalogue's database, write ``env``; or find them up already."""
    folder = folder.expanduser().absolute()
    state = read_state(folder)
    if state is not None and (found := _resume_or_clear(folder, state, say)) is not None:
        return found
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    startup = _Startup(folder, say)
    write_state(folder, startup.state)
    try:
        env = startup.run()
    except BaseException:
        startup.abort()
        raise
    _write_private(folder / ENV_FILE, render_env(env, folder))
    write_state(folder, startup.state.model_copy(update={"env": env}))
    return Stack(folder, env, already_up=False)


def down(folder: Path, say: Say) -> bool:
    """Stop the services ``up`` started in ``folder`` and delete the folder with all their data.
    False if nothing was there; ``FolderRefused`` (nothing touched) for another's folder."""
    folder = folder.expanduser().absolute()
    state = read_state(folder)
    if state is None:
        return False
    clear(folder, state, say)
    return True
