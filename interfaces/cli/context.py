"""What the command groups share: the settings the root command made, the app built from them,
progress lines, the metrics option and stop signals. What commands are given is checked in
``interfaces.cli.inputs``."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import click
from prometheus_client import CollectorRegistry

from ingest.segmenting import Progress, no_progress
from workers.app import Vigil, build_app
from workers.metrics import MetricsServer, serve
from workers.settings import Settings


@dataclass(frozen=True)
class CliState:
    """What the root command sets up for every command (its ``ctx.obj``)."""

    settings: Settings
    quiet: bool


def cli_state(ctx: click.Context) -> CliState:
    state = ctx.find_object(CliState)
    if state is None:
        raise RuntimeError("a vigil command ran without the root command's settings")
    return state


def settings_of(ctx: click.Context) -> Settings:
    return cli_state(ctx).settings


class ProgressPrinter:
    """Progress of long work on stderr, at most a few lines a second."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._last: dict[tuple[str, str], float] = {}

    def __call__(self, recording: str, stage: str, fraction: float) -> None:
        if self.quiet:
            return
        key = (recording, stage)
        moment = time.monotonic()
        if fraction < 1 and moment - self._last.get(key, 0.0) < 0.5:
            return
        self._last[key] = moment
        click.echo(f"  {recording} {stage:<8} {fraction * 100:5.1f}%", err=True)


def open_app(
    settings: Settings, *, progress: Progress = no_progress, notices: bool = True
) -> Vigil:
    """The app wired from ``settings``; with ``notices``, its notices go to stderr."""
    app = build_app(settings, progress=progress)
    if notices:
        for notice in app.notices:
            click.echo(f"notice: {notice}", err=True)
    return app


@contextmanager
def running_app(ctx: click.Context) -> Iterator[Vigil]:
    """The app of one short command, with progress lines unless ``--quiet``; stopped at the end."""
    state = cli_state(ctx)
    app = open_app(state.settings, progress=ProgressPrinter(state.quiet))
    try:
        yield app
        # Every command's custody events go into the ledger under a signed tree head (where
        # this process holds the key; else the ledger service signs them within its interval).
        if app.ledger.can_sign:
            app.ledger.checkpoint()
    finally:
        app.stop()


@contextmanager
def stopping(app: Vigil, server: MetricsServer | None = None) -> Iterator[Vigil]:
    """Stop ``app`` however the block ends, and its metrics ``server`` (if any) just before.

    Stands in for handing ``server.stop`` to the app's own closers, which ``Vigil`` offers no
    public way to do (yet)."""
    try:
        yield app
    finally:
        try:
            if server is not None:
                server.stop()
        finally:
            app.stop()


metrics_port_option = click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve /metrics on this port (overrides VIGIL_METRICS_PORT; several processes on one"
    " host each need their own).",
)


def serve_metrics(
    registry: CollectorRegistry, settings: Settings, port: int | None, name: str
) -> MetricsServer | None:
    chosen = settings.metrics_port if port is None else port
    if not chosen:
        return None
    server = serve(registry, chosen, settings.metrics_bind)
    click.echo(f"{name}: metrics on http://{settings.metrics_bind}:{server.port}/metrics", err=True)
    return server


def on_stop_signals(stop: threading.Event, *, grace_s: float, kill: Callable[[], None]) -> None:
    """SIGTERM/SIGINT: finish the message in hand, then stop. After ``grace_s`` the ffmpeg
    still running is killed and the message abandoned (uncommitted, so it is redelivered).
    A second Ctrl+C gets Python's default behaviour back."""

    def handle(signum: int, _frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            return
        stop.set()
        timer = threading.Timer(grace_s, kill)
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
