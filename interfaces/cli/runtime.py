"""The long-running processes: ``vigil worker`` (a Kafka stage worker), ``vigil api``, ``vigil
live`` (a live stream recorder), ``vigil monitor`` (metrics), and ``vigil resume`` (re-drive
what a crash left unfinished)."""

from __future__ import annotations

import os
import threading

import click
from prometheus_client import CollectorRegistry

from catalog.figures import catalog_figures
from catalog.repository import now
from ingest.live import LivePolicy, LiveSource
from ingest.service import RecordingMetadata
from interfaces.cli.context import (
    metrics_port_option,
    on_stop_signals,
    open_app,
    running_app,
    serve_metrics,
    settings_of,
    stopping,
)
from interfaces.cli.inputs import actor_option, device_option, finite, officer_option
from transcode.ffmpeg import redact
from workers.app import STAGE_INPUTS, retention_policy
from workers.behind import BehindDrain
from workers.kafka_bus import Outcome, RetryPolicy, StageWorker, dead_letter_topic
from workers.messages import topic_for
from workers.metrics import process_collectors, serve
from workers.monitor import CatalogCollector, KafkaCollector, kafka_figures


@click.command()
@click.argument("stage", type=click.Choice(sorted(STAGE_INPUTS)))
@click.option("--id", "worker_id", default=None, help="Name in logs (default: the PID).")
@metrics_port_option
@click.pass_context
def worker(ctx: click.Context, stage: str, worker_id: str | None, metrics_port: int | None) -> None:
    """Run one STAGE as a Kafka consumer-group worker until SIGTERM."""
    settings = settings_of(ctx)
    if settings.bus != "kafka":
        raise click.UsageError("stage workers consume Kafka: set VIGIL_BUS=kafka")
    name = f"{stage}-{worker_id or os.getpid()}"
    app = open_app(settings, notices=False)
    server = serve_metrics(app.metrics.registry, settings, metrics_port, f"worker {name}")
    stop = threading.Event()
    on_stop_signals(stop, grace_s=settings.shutdown_grace_s, kill=app.runner.stop)
    assert app.publisher is not None

    def report(outcome: Outcome) -> None:
        app.metrics.message(stage, outcome.status, outcome.seconds)
        error = f" ({outcome.error})" if outcome.error else ""
        click.echo(
            f"worker {name}: {outcome.where} {outcome.status} {outcome.seconds:.2f} s{error}",
            err=True,
        )

    click.echo(f"worker {name}: consuming {', '.join(STAGE_INPUTS[stage])}", err=True)
    with stopping(app, server):
        StageWorker(
            stage=stage,
            inputs=STAGE_INPUTS[stage],
            handler=app.stages[stage],
            publisher=app.publisher,
            bootstrap=settings.kafka_bootstrap,
            stop=stop,
            retry=RetryPolicy(attempts=settings.handler_attempts),
            client_id=f"vigil-{name}",
            on_outcome=report,
            on_failure=lambda kind: app.metrics.failed_attempt(stage, kind),
            on_assigned=lambda names: click.echo(
                f"worker {name}: assigned {', '.join(names) or 'nothing'}", err=True
            ),
        ).run()
    click.echo(f"worker {name}: stopped", err=True)


@click.command()
@click.option("--host", default=None, help="Overrides VIGIL_API_HOST.")
@click.option("--port", type=int, default=None, help="Overrides VIGIL_API_PORT.")
@click.pass_context
def api(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the HTTP API and the reviewer web page (OpenAPI at /docs) until SIGTERM."""
    import uvicorn

    from interfaces.api.app import create_api

    settings = settings_of(ctx)
    app = open_app(settings)
    # The media-link secret: VIGIL_API_SECRET, or in development one generated per deployment
    # (workers/secrets.py); production refuses to start without it.
    server = create_api(app)
    # Also on the API port at /metrics; this one matches the workers'.
    metrics = serve_metrics(app.metrics.registry, settings, None, "api")
    with stopping(app, metrics):
        uvicorn.run(
            server,
            host=host or settings.api_host,
            port=port or settings.api_port,
            log_level="warning",
            timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        )


@click.command()
@click.argument("source")
@device_option(required=True, help="Camera ID, e.g. CAM-EAST-GATE.")
@officer_option(help="Officer ID, if a person wears or operates it.")
@click.option("--category", help="Footage category.")
@click.option(
    "--listen",
    is_flag=True,
    help="SOURCE is rtmp://HOST:PORT/APP/KEY to listen on: the camera pushes to Vigil.",
)
@click.option(
    "--max-seconds",
    default=24 * 3600.0,
    show_default=True,
    callback=finite("--max-seconds", above=True),
    help="Longest recording.",
)
@click.option(
    "--max-outage",
    default=300.0,
    show_default=True,
    callback=finite("--max-outage"),
    help="Seconds to wait for a lost camera to come back (0: end at the first loss).",
)
@click.option(
    "--retry",
    default=2.0,
    show_default=True,
    callback=finite("--retry", above=True),
    help="Seconds between pull retries.",
)
@click.option(
    "--io-timeout",
    default=10.0,
    show_default=True,
    callback=finite("--io-timeout", above=True),
    help="Silence that counts as a lost camera.",
)
@actor_option
@click.pass_context
def live(
    ctx: click.Context, source: str, device: str, officer: str | None, category: str | None,
    listen: bool, max_seconds: float, max_outage: float, retry: float, io_timeout: float,
    actor: str,
) -> None:  # fmt: skip
    """Record a live stream from SOURCE: pull any URL ffmpeg reads (rtsp://, http://, tcp://…),
    or with --listen accept an RTMP push. Segments are stored and announced as they close; a
    camera that drops out and comes back continues the same recording, the outage a gap."""
    metadata = RecordingMetadata(
        device_id=device, officer_id=officer, category=category, original_name="live.ts"
    )
    try:
        live_source = LiveSource(source, "push" if listen else "pull")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    policy = LivePolicy(
        max_s=max_seconds, max_outage_s=max_outage, retry_s=retry, io_timeout_s=io_timeout
    )
    stop = threading.Event()
    with running_app(ctx) as app:
        on_stop_signals(stop, grace_s=app.settings.shutdown_grace_s, kill=app.runner.stop)
        # The custody path runs on the recorder's thread; the work that follows it drains on
        # a thread of its own at a lower priority, so it never holds up the next segment.
        behind = BehindDrain(app.run_pipeline)
        recorder = app.live_recorder(after_publish=behind.poke)
        click.echo(f"recording {redact(source)}", err=True)
        try:
            result = recorder.record(live_source, metadata, actor=actor, policy=policy, stop=stop)
        finally:
            # The dense index and finalise catch up behind; the recording completes here.
            behind.close()
    outages = ", ".join(f"{s:.1f} s" for s in result.outages_s) or "none"
    click.echo(
        f"recorded: {result.recording_id} sha256 {result.sha256} {result.segments} segments in"
        f" {result.sessions} session(s), outages {outages} ({result.reason}: {result.stopped_by})"
    )


@click.command()
@metrics_port_option
@click.pass_context
def monitor(ctx: click.Context, metrics_port: int | None) -> None:
    """Serve the catalogue's figures and Kafka's lag as Prometheus metrics until SIGTERM."""
    settings = settings_of(ctx)
    app = open_app(settings, notices=False)
    registry = CollectorRegistry()
    process_collectors(registry)  # the monitor's own memory and CPU, like every process's
    policy = retention_policy(settings)
    registry.register(
        CatalogCollector(lambda: catalog_figures(app.catalog, now(), policy.days_for))
    )
    if settings.bus == "kafka":
        groups = {
            topic_for(stage, settings.kafka_topic_prefix): [
                topic_for(t, settings.kafka_topic_prefix) for t in inputs
            ]
            for stage, inputs in STAGE_INPUTS.items()
        }
        dead = dead_letter_topic(settings.kafka_topic_prefix)
        registry.register(
            KafkaCollector(lambda: kafka_figures(settings.kafka_bootstrap, groups, dead))
        )
    port = settings.metrics_port if metrics_port is None else metrics_port
    if not port:
        raise click.UsageError("vigil monitor serves metrics: give --metrics-port or set it")
    server = serve(registry, port, settings.metrics_bind)
    click.echo(
        f"monitor: metrics on http://{settings.metrics_bind}:{server.port}/metrics", err=True
    )
    stop = threading.Event()
    on_stop_signals(stop, grace_s=0, kill=lambda: None)
    with stopping(app, server):
        stop.wait()


@click.command()
@click.pass_context
def resume(ctx: click.Context) -> None:
    """Re-drive every recording whose processing did not finish (after a crash)."""
    with running_app(ctx) as app:
        pending = app.resume_unfinished()
        app.run_pipeline()
    click.echo(f"resumed {pending} recording(s)")


COMMANDS: tuple[click.Command, ...] = (worker, api, live, monitor, resume)
