"""A real PostgreSQL server (Debian's package) on a free loopback port, for the catalogue tests
and ``vigil services``.

``initdb`` makes a fresh cluster with a trusted ``vigil`` superuser; ``postgres`` then listens
on 127.0.0.1 only, with its Unix socket inside the data folder. PostgreSQL refuses to run as
root, so as root the data folder belongs to the ``postgres`` system user and both programs run
through ``runuser -u postgres --``; that folder is made under the system temp folder (pytest's
own temp folders are private to root), with a ``pgdata`` symlink to it in ``work``.

    pg = PostgresService(tmp / "pg")
    pg.start()
    url = pg.create_database()          # postgresql+psycopg://vigil@127.0.0.1:PORT/vigil_test_…
    pg.destroy()                        # stop and remove the cluster

``ExternalPostgres`` offers the same ``url``/``create_database``/``drop_database`` on a server
someone else runs (``VIGIL_TEST_DATABASE_URL``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from interfaces.devservices.base import (
    HOST,
    ManagedProcess,
    ServiceError,
    child_pids,
    free_port,
    pid_alive,
    wait_until,
)

SUPERUSER = "vigil"
DB_PREFIX = "vigil_test_"


def pg_bindir() -> Path:
    """Where initdb and postgres live: $VIGIL_PG_BIN, else Debian's newest
    /usr/lib/postgresql/N/bin, else wherever ``initdb`` is on PATH."""
    if env := os.environ.get("VIGIL_PG_BIN"):
        return Path(env)
    versions = [
        p
        for p in Path("/usr/lib/postgresql").glob("*/bin")
        if (p / "initdb").exists() and re.fullmatch(r"\d+", p.parent.name)
    ]
    if versions:
        return max(versions, key=lambda p: int(p.parent.name))
    found = shutil.which("initdb")
    if found is None:
        raise ServiceError("no PostgreSQL server binaries (initdb): apt-get install postgresql")
    return Path(found).parent


def _connect(url: URL, database: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit psycopg connection to the server of a SQLAlchemy URL."""
    params: dict[str, str | int] = {
        key: value
        for key, value in {
            "host": url.host,
            "port": url.port,
            "user": url.username,
            "password": url.password,
            "dbname": database or url.database or "postgres",
        }.items()
        if value is not None
    }
    for key, value in url.query.items():
        params[key] = value if isinstance(value, str) else value[-1]
    params.setdefault("connect_timeout", 10)
    return psycopg.connect(autocommit=True, **params)  # type: ignore[arg-type]


def create_database_at(server_url: str) -> str:
    """Create a fresh uuid-named database on the server of ``server_url``; return its URL."""
    url = make_url(server_url)
    name = f"{DB_PREFIX}{uuid.uuid4().hex}"
    with _connect(url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url.set(database=name).render_as_string(hide_password=False)


def create_named_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``server_url``; return its URL."""
    url = make_url(server_url)
    with _connect(url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database_at(server_url: str, database_url: str) -> None:
    """Drop a database made by ``create_database_at`` (its connections are ended first)."""
    name = make_url(database_url).database
    if not name or not name.startswith(DB_PREFIX):
        raise ValueError(f"not a test database: {name!r}")
    with _connect(make_url(server_url)) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


class ExternalPostgres:
    """A PostgreSQL server run elsewhere; ``server_url`` names a database to connect to for
    CREATE/DROP DATABASE (its role needs CREATEDB)."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url

    def url(self, database: str = "postgres") -> str:
        return make_url(self.server_url).set(database=database).render_as_string(False)

    def create_database(self) -> str:
        return create_database_at(self.server_url)

    def drop_database(self, database_url: str) -> None:
        drop_database_at(self.server_url, database_url)


class PostgresService:
    """A throwaway PostgreSQL cluster: initdb on first start, then postgres on a free port."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        self.log = work / "postgres.log"
        self.run_as = "postgres" if os.geteuid() == 0 else None
        self.data: Path | None = None
        self.bindir = pg_bindir()
        self._process: ManagedProcess | None = None

    # -- set-up -------------------------------------------------------------------------------

    def _data_dir(self) -> Path:
        if self.data is not None:
            return self.data
        self.work.mkdir(parents=True, exist_ok=True)
        if self.run_as is None:
            data = self.work / "pgdata"
            data.mkdir(mode=0o700, exist_ok=True)
        else:
            owner = pwd.getpwnam(self.run_as)
            data = Path(tempfile.mkdtemp(prefix="vigil-pg-"))
            os.chown(data, owner.pw_uid, owner.pw_gid)
            data.chmod(0o700)
            link = self.work / "pgdata"
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(data)
        self.data = data
        return data

    def _command(self, program: str, *args: str) -> list[str]:
        cmd = [str(self.bindir / program), *args]
        return cmd if self.run_as is None else ["runuser", "-u", self.run_as, "--", *cmd]

    def _initdb(self, data: Path) -> None:
        if (data / "PG_VERSION").exists():
            return
        cmd = self._command(
            "initdb", "-D", str(data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
            "--no-locale", "--no-sync", "--no-instructions",
        )  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            out = (result.stdout + result.stderr)[-4000:]
            raise ServiceError(f"initdb failed:\n{out}")

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout_s: float = 60) -> None:
        if self._process is not None and self._process.running:
            return
        data = self._data_dir()
        self._initdb(data)
        stale = self.postmaster_pid()
        if stale is not None and not pid_alive(stale):  # left by kill(): a crash, not a live server
            (data / "postmaster.pid").unlink(missing_ok=True)
        settings = {
            "listen_addresses": HOST,
            "port": str(self.port),
            "unix_socket_directories": str(data),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "64MB",
            "log_min_messages": "warning",
            "log_line_prefix": "%m [%p] ",
        }
        args = [arg for k, v in settings.items() for arg in ("-c", f"{k}={v}")]
        cmd = [str(self.bindir / "postgres"), "-D", str(data), *args]
        self._process = ManagedProcess("postgres", cmd, self.log, user=self.run_as)
        self._process.start()
        process = self._process
        try:
            wait_until(
                self._ready, timeout_s, f"PostgreSQL on port {self.port}", self.log,
                alive=lambda: process.running,
            )  # fmt: skip
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        with _connect(make_url(self.url()), "postgres") as conn:
            conn.execute("SELECT 1")
        return True

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def pid(self) -> int | None:
        """The started process's PID: the postmaster, or ``runuser`` around it (as root)."""
        return None if self._process is None else self._process.pid

    def stop(self) -> None:
        """Fast shutdown: SIGINT to the postmaster (SIGTERM would wait for every client to
        disconnect, and a signal to runuser would have it SIGKILL postgres after 2 s)."""
        process = self._process
        if process is None or process.proc is None or not process.running:
            return
        postmaster = self.postmaster_pid()
        if postmaster is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(postmaster, signal.SIGINT)
        try:
            process.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.stop(grace_s=5)

    def kill(self) -> None:
        """SIGKILL to the postmaster and its backends, as a crash would. (They are not all in
        one process group: each backend calls setsid.)"""
        if self._process is None:
            return
        postmaster = self.postmaster_pid()
        victims = [] if postmaster is None else [postmaster, *child_pids(postmaster)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._process.kill()
        wait_until(lambda: not any(map(pid_alive, victims)), 30, "killed postgres to exit", None)

    def postmaster_pid(self) -> int | None:
        """The postmaster's PID, from its postmaster.pid (None before it wrote one)."""
        try:
            return int(((self.data or self.work) / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def destroy(self) -> None:
        """Stop and remove the cluster's files (the work folder's log stays)."""
        self.stop()
        if self.data is not None:
            shutil.rmtree(self.data, ignore_errors=True)
            link = self.work / "pgdata"
            if link.is_symlink():
                link.unlink()
            self.data = None

    # -- databases ----------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh uuid-named database on this server; returns its SQLAlchemy URL."""
        return create_database_at(self.url())

    def drop_database(self, database_url: str) -> None:
        drop_database_at(self.url(), database_url)
