"""Metrics: what the pipeline counts, the timed store, ffmpeg speed, the catalogue figures."""

from __future__ import annotations

import contextlib
import hashlib
import typing
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from catalog.access import AccessService
from catalog.db import make_engine
from catalog.figures import CatalogFigures, catalog_figures, known_devices
from catalog.repository import Catalog, Event
from store.errors import ObjectMissing, StoreUnavailable
from store.local import LocalFolderStore
from tests.helpers import START, ingest_and_process, metadata, recording
from transcode.samples import SampleSpec
from workers.app import STAGE_INPUTS, Vigil
from workers.kafka_bus import Outcome
from workers.metrics import (
    COMMAND_KINDS,
    ERROR_KINDS,
    OUTCOMES,
    STAGES,
    STORE_OPERATIONS,
    InstrumentedStore,
    Metrics,
    command_kind,
    error_kind,
    sample_names,
    serve,
)
from workers.monitor import CatalogCollector, KafkaCollector, KafkaFigures, PartitionLag


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


Series = tuple[str, frozenset[tuple[str, str]]]


def scrape(registry: CollectorRegistry) -> dict[Series, float]:
    """Every sample of the registry's exposition text, as Prometheus would read it."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def series(name: str, **labels: str) -> Series:
    return name, frozenset(labels.items())


def unstarted_counters(registry: CollectorRegistry) -> set[str]:
    """Labelled counters with no series yet: their first increment would be no increase."""
    return {f.name for f in registry.collect() if f.type == "counter" and not f.samples}


def test_every_labelled_counter_exists_at_zero_for_its_known_labels_from_the_start(
    tmp_path: Path,
) -> None:
    metrics = Metrics()
    scraped = scrape(metrics.registry)
    for stage in ("segment", "phash", "transcode", "finalise"):
        assert scraped[series("vigil_dead_letters_total", stage=stage)] == 0
        assert scraped[series("vigil_retries_total", stage=stage)] == 0
        for outcome in ("done", "dead-lettered", "abandoned"):
            assert scraped[series("vigil_stage_messages_total", stage=stage, outcome=outcome)] == 0
        for kind in ("invalid", "not_found", "conflict", "forbidden", "unavailable", "failed"):
            assert scraped[series("vigil_errors_total", stage=stage, kind=kind)] == 0
        assert scraped[series("vigil_errors_total", stage=stage, kind="unexpected")] == 0
    for stage in ("segment", "phash", "transcode"):
        assert scraped[series("vigil_stage_footage_seconds_total", stage=stage)] == 0
        assert scraped[series("vigil_stage_bytes_total", stage=stage)] == 0
    for kind in ("probe", "decode", "segment", "transcode", "other"):
        for outcome in ("ok", "failed"):
            assert scraped[series("vigil_ffmpeg_runs_total", kind=kind, outcome=outcome)] == 0
    assert scraped[series("vigil_segments_total", kind="copy")] == 0
    assert scraped[series("vigil_recordings_total", status="complete")] == 0
    # Devices and witnesses are known once the catalogue and the settings are read, the store's
    # backend once the store is made.
    assert unstarted_counters(metrics.registry) == {
        "vigil_uploads", "vigil_upload_bytes", "vigil_ledger_witness_failures",
        "vigil_store_errors",
    }  # fmt: skip
    metrics.devices_known(["BC-0042", "BC-0043"])
    metrics.witnesses_known(["court.example/w1"])
    InstrumentedStore(LocalFolderStore(tmp_path), metrics, "local")
    assert unstarted_counters(metrics.registry) == set()
    scraped = scrape(metrics.registry)
    for device in ("BC-0042", "BC-0043"):
        assert scraped[series("vigil_uploads_total", device=device)] == 0
        assert scraped[series("vigil_upload_bytes_total", device=device)] == 0
    for kind in ("inconsistent", "unavailable", "forbidden", "invalid"):
        failures = series(
            "vigil_ledger_witness_failures_total", witness="court.example/w1", kind=kind
        )
        assert scraped[failures] == 0


def test_the_first_event_is_an_increase_from_zero() -> None:
    metrics = Metrics()
    metrics.devices_known(["BC-0042"])
    dead = series("vigil_dead_letters_total", stage="phash")
    uploads = series("vigil_uploads_total", device="BC-0042")
    before = scrape(metrics.registry)
    metrics.message("phash", "dead-lettered", 0.5)
    metrics.received("BC-0042", 1000, None)
    after = scrape(metrics.registry)
    assert (before[dead], after[dead]) == (0, 1)
    assert (before[uploads], after[uploads]) == (0, 1)
    assert after[series("vigil_upload_bytes_total", device="BC-0042")] == 1000


def test_the_known_label_values_are_those_the_code_uses() -> None:
    assert set(STAGES) == set(STAGE_INPUTS)
    assert set(OUTCOMES) == set(typing.get_args(typing.get_type_hints(Outcome)["status"]))
    assert len(ERROR_KINDS) == len(set(ERROR_KINDS)) == 7


def test_failed_attempts_are_counted_by_error_kind() -> None:
    metrics = Metrics()
    metrics.failed_attempt("phash", "ObjectMissing")  # the Kafka worker reports the class name
    metrics.failed_attempt("segment", StoreUnavailable("the store is down"))
    metrics.failed_attempt("segment", KeyError("a bug"))
    metrics.failed_attempt("segment", "KeyError")
    r = metrics.registry
    assert value(r, "vigil_errors_total", stage="phash", kind="not_found") == 1
    assert value(r, "vigil_errors_total", stage="segment", kind="unavailable") == 1
    assert value(r, "vigil_errors_total", stage="segment", kind="unexpected") == 2
    assert value(r, "vigil_retries_total", stage="segment") == 3
    kinds = {dict(labels)["kind"] for name, labels in scrape(r) if name == "vigil_errors_total"}
    assert kinds == set(ERROR_KINDS)  # no label value outside the known ones
    assert error_kind("conflict") == "conflict"


def test_process_metrics_are_on_the_registry() -> None:
    names = {name for name, _ in scrape(Metrics().registry)}
    assert {
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
        "python_info",
        "python_gc_collections_total",
    } <= names


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
    assert kind in COMMAND_KINDS  # its counters exist at 0 from the start


def test_instrumented_store_times_requests_and_counts_failures(tmp_path: Path) -> None:
    metrics = Metrics()
    store = InstrumentedStore(LocalFolderStore(tmp_path / "objects"), metrics, "local")
    scraped = scrape(metrics.registry)
    for operation in STORE_OPERATIONS:
        for kind in ERROR_KINDS:
            errors = series(
                "vigil_store_errors_total", backend="local", operation=operation, kind=kind
            )
            assert scraped[errors] == 0
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
    assert value(r, "vigil_store_errors_total", operation="get", kind="not_found", **labels) == 1


def test_every_store_operation_is_a_known_one(tmp_path: Path) -> None:
    metrics = Metrics()
    store = InstrumentedStore(LocalFolderStore(tmp_path / "objects"), metrics, "local")
    source = tmp_path / "f"
    source.write_bytes(b"evidence")
    store.put_file("originals", "a/b", source, hashlib.sha256(b"evidence").hexdigest())
    calls: list[Callable[[], object]] = [
        lambda: store.stat("originals", "a/b"),
        lambda: store.list_keys("originals", "a/"),
        lambda: store.legal_hold("originals", "a/b"),
        lambda: store.set_legal_hold("originals", "a/b", False),
        lambda: store.retention("originals", "a/b"),
        lambda: store.extend_retention("originals", "a/b", START + timedelta(days=400)),
        lambda: store.delete_expired("originals", "a/b", START),
    ]
    for call in calls:
        with contextlib.suppress(Exception):
            call()
    for opened in (
        store.local_path("originals", "a/b"),
        store.open("originals", "a/b"),
        store.open_range("originals", "a/b", 0, 2),
    ):
        with opened:
            pass
    counted = {
        dict(labels)["operation"]
        for (name, labels), n in scrape(metrics.registry).items()
        if name == "vigil_store_request_duration_seconds_count" and n > 0
    }
    assert counted == set(STORE_OPERATIONS)


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
    # A device with an API principal is known before it uploads anything.
    AccessService(catalog).add_principal(
        "cam-3", "device", display_name="BC-3", actor="t", device_id="BC-3"
    )
    now = START + timedelta(hours=3)  # both received at START + 2 h
    figures = catalog_figures(catalog, now, lambda category: 183)
    assert known_devices(catalog) == ["BC-1", "BC-2", "BC-3"]
    assert figures.uploads_by_device == {"BC-1": 1, "BC-2": 1, "BC-3": 0}
    assert figures.uploads_recent_by_device == {"BC-1": 1, "BC-2": 1, "BC-3": 0}
    assert figures.oldest_unsegmented_s == 3600  # both stored, waiting for an hour
    assert figures.recordings_by_status == {"stored": 2}
    assert figures.stored_bytes == {"originals": 2000, "derived": 0}
    assert figures.footage_seconds == 120.0
    assert (figures.uncategorised, figures.unlinked) == (1, 1)
    assert (figures.late_uploads, figures.late_uploads_recent) == (1, 1)
    assert figures.ledger_pending == 4  # two ingests, the link, the principal: not yet sequenced
    assert figures.last_upload_by_device["BC-1"] == (on_time.received_at, True)
    soon = catalog_figures(catalog, START + timedelta(days=180), lambda category: 183)
    assert soon.retention_ending_7d == 1  # the unlinked one; the linked one is held
    assert soon.late_uploads_recent == 0
    assert soon.uploads_recent_by_device == {"BC-1": 0, "BC-2": 0, "BC-3": 0}
    # Only recordings not yet on record wait: stored or segmenting, not live, segmented or done.
    catalog.update_recording(late.id, status="segmenting", received_at=START + timedelta(hours=1))
    assert catalog_figures(catalog, now, lambda c: 183).oldest_unsegmented_s == 7200
    for status in ("recording", "segmented", "complete", "unreadable", "deleted"):
        catalog.update_recording(late.id, status=status)
        assert catalog_figures(catalog, now, lambda c: 183).oldest_unsegmented_s == 3600, status
    catalog.update_recording(on_time.id, status="complete")
    assert catalog_figures(catalog, now, lambda c: 183).oldest_unsegmented_s == 0


def test_collectors_expose_figures_and_say_when_they_cannot(tmp_path: Path) -> None:
    figures = CatalogFigures(
        recordings_by_status={"complete": 2},
        uploads_by_device={"BC-1": 2, "BC-2": 0},
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
        uploads_recent_by_device={"BC-1": 1, "BC-2": 0},
        oldest_unsegmented_s=90.0,
    )
    registry = CollectorRegistry()
    registry.register(CatalogCollector(lambda: figures))
    registry.register(
        KafkaCollector(lambda: KafkaFigures([PartitionLag("g", "t", 0, 7)], dead_letter_messages=2))
    )
    assert value(registry, "vigil_catalog_up") == 1
    assert value(registry, "vigil_catalog_verification_failures") == 3
    scraped = scrape(registry)
    assert scraped[series("vigil_catalog_uploads_total", device="BC-2")] == 0  # known, none yet
    assert scraped[series("vigil_catalog_uploads_recent", device="BC-1")] == 1
    assert scraped[series("vigil_catalog_uploads_recent", device="BC-2")] == 0
    assert scraped[series("vigil_catalog_received_total")] == 2
    assert scraped[series("vigil_catalog_oldest_unsegmented_seconds")] == 90
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
