"""Helpers shared by the tests."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from ingest.service import RecordingMetadata
from workers.app import Vigil


def metadata(
    name: str, device: str = "BC-0042", start: datetime | None = None
) -> RecordingMetadata:
    return RecordingMetadata(
        device_id=device,
        officer_id="031245",
        device_start=start or datetime(2026, 11, 27, 9, 30, tzinfo=UTC),
        original_name=name,
    )


def ingest_and_process(
    app: Vigil, path: Path, device: str = "BC-0042", start: datetime | None = None
) -> str:
    result = app.ingest.ingest_file(path, metadata(path.name, device, start), actor="test")
    app.run_pipeline()
    return result.recording_id


def object_path(app: Vigil, bucket: str, key: str) -> Path:
    return app.settings.store_root / bucket / key


def copy_to(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst
