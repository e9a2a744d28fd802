"""Metrics: what the pipeline counts, the timed store, ffmpeg speed, the catalogue figures."""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from catalog.db import make_engine
from catalog.figures import CatalogFigures, catalog_figures
from catalog.repository import Catalog, Event
from store.errors import ObjectMissing
from store.local import LocalFolderStore
from tests.helpers import START, ingest_and_process, metadata, recording
from transcode.samples import SampleSpec
from workers.app import Vigil
from workers.metrics import (
    CatalogCollector,
    InstrumentedStore,
    KafkaCollector,
    KafkaFigures,
    Metrics,
    PartitionLag,
    command_kind,
    sample_names,
    serve,
)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


@pytest.mark.parametrize(
    ("cmd", "kind"),
    [
        (["ffmpeg", "-i", "x", "-f", "framecrc", "-"], "probe"),
        (["ffmpeg", "-i", "x", "-f", "rawvideo", "pipe:"], "decode"),
        (["ffmpeg", "-i", "x", "-c", "copy", "-f", "segment", "o%05d.ts"], "segment"),
        (["ffmpeg", "-i", "x", "-c:v", "libx264", "-f", "segment", "o%05d.ts"], "transcode"),
        (["ffmpeg", "-i", "x", "-c:v", "libx264", "out.mp4"], "transcode"),
        (["ffmpeg", "-version"], "other"),
    ],
)
def test_command_kind(cmd: list[str], kind: str) -> None:
    assert command_kind(cmd) == kind


def test_instrumented_store_times_requests_and_counts_failures(tmp_path: Path) -> None:
    metrics = Metrics()
    store = InstrumentedStore(LocalFolderStore(tmp_path / "objects"), metrics, "local")
    source = tmp_path / "f"
    source.write_bytes(b"evidence")
    sha = hashlib.sha256(b"evidence").hexdigest()
    store.put_file("originals", "a/b", source, sha)
    with store.open("originals", "a/b") as fh:
        assert fh.read() == b"evidence"
    with pytest.raises(ObjectMissing), store.local_path("originals", "nope"):
        pass
    r = metrics.registry
    labels = {"backend": "local"}
    count = "vigil_store_request_duration_seconds_count"
    assert value(r, count, operation="put", **labels) == 1
    assert value(r, count, operation="get", **labels) == 2
    assert (
        value(r, "vigil_store_errors_total", operation="get", kind="ObjectMissing", **labels) == 1
    )


@pytest.mark.ffmpeg
def test_the_pipeline_counts_what_it_processed(
    app_factory: Callable[..., Vigil], make_clip: Callable[[SampleSpec], Path]
) -> None:
    app = app_factory(segment_seconds=4.0)
    clip = make_clip(SampleSpec(duration_s=10.0, width=320, height=240, seed=5))
    ingest_and_process(app, clip)
    r = app.metrics.registry
    footage = "vigil_stage_footage_seconds_total"
    assert value(r, footage, stage="segment") == pytest.approx(10.0, abs=0.1)
    assert value(r, footage, stage="phash") == pytest.approx(10.0, abs=0.1)
    assert value(r, "vigil_stage_bytes_total", stage="segment") == clip.stat().st_size
    assert value(r, "vigil_segments_total", kind="copy") == 3
    assert value(r, "vigil_recordings_total", status="complete") == 1
    assert value(r, "vigil_uploads_total", device="BC-0042") == 1
    assert value(r, "vigil_end_to_end_seconds_count") == 1
    assert value(r, "vigil_ffmpeg_runs_total", kind="segment", outcome="ok") >= 1
    # x realtime per segmenting run and per decoded segment: stream copy is far faster than
    # realtime, decoding 240p too.
    assert value(r, "vigil_ffmpeg_speed_ratio_count", kind="segment") == 1
    assert value(r, "vigil_ffmpeg_speed_ratio_sum", kind="segment") > 2
    assert value(r, "vigil_ffmpeg_speed_ratio_count", kind="decode") == 3
    # Re-delivering the work counts nothing twice.
    app.ingest.ingest_file(clip, metadata(clip.name), actor="test")
    app.run_pipeline()
    assert value(r, "vigil_segments_total", kind="copy") == 3
    assert value(r, "vigil_uploads_total", device="BC-0042") == 1


def test_catalog_figures_from_a_seeded_catalogue(tmp_path: Path) -> None:
    catalog = Catalog(make_engine(f"sqlite:///{tmp_path / 'c.sqlite3'}"))
    catalog.migrate()
    on_time = recording("on-time", device="BC-1", duration=60.0)
    late = recording("late", device="BC-2", duration=60.0, start=START - timedelta(days=3))
    late.category = "traffic"
    for rec in (on_time, late):
        catalog.add_recording(rec, Event("ingest", "t", rec.id))
    catalog.link("CASE-1", late.id, from_s=None, to_s=None, reason="r", actor="t")
    now = START + timedelta(hours=3)  # both received at START + 2 h
    figures = catalog_figures(catalog, now, lambda category: 183)
    assert figures.uploads_by_device == {"BC-1": 1, "BC-2": 1}
    assert figures.recordings_by_status == {"stored": 2}
    assert figures.stored_bytes == {"originals": 2000, "derived": 0}
    assert figures.footage_seconds == 120.0
    assert (figures.uncategorised, figures.unlinked) == (1, 1)
    assert (figures.late_uploads, figures.late_uploads_recent) == (1, 1)
    assert figures.ledger_pending == 3  # two ingests and the link, not yet sequenced
    assert figures.last_upload_by_device["BC-1"] == (on_time.received_at, True)
    soon = catalog_figures(catalog, START + timedelta(days=180), lambda category: 183)
    assert soon.retention_ending_7d == 1  # the unlinked one; the linked one is held
    assert soon.late_uploads_recent == 0


def test_collectors_expose_figures_and_say_when_they_cannot(tmp_path: Path) -> None:
    figures = CatalogFigures(
        recordings_by_status={"complete": 2},
        uploads_by_device={"BC-1": 2},
        last_upload_by_device={"BC-1": (START, False)},
        stored_bytes={"originals": 10, "derived": 20},
        footage_seconds=5.0,
        uncategorised=1,
        unlinked=0,
        verification_failures=3,
        late_uploads=0,
        late_uploads_recent=0,
        retention_ending_7d=0,
        ledger_pending=0,
    )
    registry = CollectorRegistry()
    registry.register(CatalogCollector(lambda: figures))
    registry.register(
        KafkaCollector(lambda: KafkaFigures([PartitionLag("g", "t", 0, 7)], dead_letter_messages=2))
    )
    assert value(registry, "vigil_catalog_up") == 1
    assert value(registry, "vigil_catalog_verification_failures") == 3
    last = "vigil_device_last_upload_timestamp_seconds"
    assert value(registry, last, device="BC-1", in_service="false") == START.timestamp()
    assert value(registry, "vigil_kafka_consumer_lag", group="g", topic="t", partition="0") == 7
    assert value(registry, "vigil_dead_letter_queue_messages") == 2

    def broken() -> CatalogFigures:
        raise RuntimeError("database down")

    failing = CollectorRegistry()
    failing.register(CatalogCollector(broken))
    assert value(failing, "vigil_catalog_up") == 0
    assert "vigil_catalog_recordings" not in sample_names(failing)


def test_metrics_are_served_over_http() -> None:
    metrics = Metrics()
    metrics.processed("segment", 12.5, 100)
    server = serve(metrics.registry, 0, "127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    finally:
        server.stop()
    assert 'vigil_stage_footage_seconds_total{stage="segment"} 12.5' in text
