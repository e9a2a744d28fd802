"""Shared fixtures: an app on embedded defaults in a temporary folder, and test footage.

Generated footage is cached in ``tests.helpers.footage_cache()`` (the user's cache, shared by
every checkout on the machine), keyed by its spec, so repeated runs do not re-render it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import footage_cache, ingest_and_process, render_once
from transcode.ffmpeg import find_ffmpeg
from transcode.samples import SampleSpec, find_font, make_sample
from workers.app import Vigil, build_app
from workers.settings import Settings

pytest_plugins = ["tests.services.fixtures", "tests.services.tsa"]  # real services, on demand


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """When witness tests are to run, start building the witnesses now, in the background
    (minutes on a fresh machine), rather than when the first of them asks."""
    del config
    if any("witness_binaries" in getattr(item, "fixturenames", ()) for item in items):
        from tests.services.witness import prebuild_witnesses

        prebuild_witnesses()


ROOT = Path(__file__).resolve().parents[1]
OPENCV_SAMPLES = Path("/usr/share/doc/opencv-doc/examples/data")

# The standard synthetic clip: 32 s of 720p H.264/AAC at 30 fps, 1 s GOP (Axon Body 3 default).
STANDARD = SampleSpec(duration_s=32.0, width=1280, height=720, video_bitrate="4M", seed=3)


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    return find_ffmpeg(os.environ.get("VIGIL_FFMPEG"))


@pytest.fixture(scope="session")
def make_clip(ffmpeg: str) -> Callable[[SampleSpec], Path]:
    def make(spec: SampleSpec) -> Path:
        digest = hashlib.sha256(repr(spec).encode()).hexdigest()[:16]
        out = footage_cache() / f"{digest}.{spec.container}"
        return render_once(out, lambda tmp: make_sample(ffmpeg, spec, tmp, font=find_font()))

    return make


@pytest.fixture(scope="session")
def standard_clip(make_clip: Callable[[SampleSpec], Path]) -> Path:
    return make_clip(STANDARD)


@pytest.fixture(scope="session")
def standard_recorded(
    tmp_path_factory: pytest.TempPathFactory, standard_clip: Path
) -> tuple[Path, str]:
    """A data folder (embedded defaults) holding the standard clip ingested and processed by
    ``ingest_and_process``, and its recording id; made once per test run, the first pytest-xdist
    worker to ask making it while the others wait (4-5 s that six fixtures, in five modules,
    each spent on an ingest of their own).

    Its segments' copies are stored (``VIGIL_SEGMENT_COPIES=keep``), as its users tamper with
    them. Nothing opens it in place: a module copies it (``tests.helpers.copy_data``) and works on
    its copy."""
    run_dir = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        run_dir = run_dir.parent  # the run's folder, above each worker's own
    shared = run_dir / "standard-recorded"
    root, done = shared / "vigil", shared / "recording-id"
    with (run_dir / "standard-recorded.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if not done.exists():
            shutil.rmtree(shared, ignore_errors=True)  # a half-made one (an interrupted run)
            # every segment's copy stored: the modules that use it tamper with stored copies
            app = build_app(Settings(data_dir=root, segment_copies="keep"))
            try:
                recording_id = ingest_and_process(app, standard_clip)
            finally:
                app.stop()
            done.write_text(recording_id)
        return root, done.read_text()


def opencv_sample(name: str) -> Path:
    path = OPENCV_SAMPLES / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} missing: the test command installs Debian's opencv-doc")
        pytest.skip(f"{path} missing (install Debian's opencv-doc)")
    return path


@pytest.fixture(scope="module", autouse=True)
def copies_kept(request: pytest.FixtureRequest) -> Iterator[None]:
    """A module marked ``copies_kept`` runs its apps (and the processes it starts) with every
    segment's copy stored: the form before issue 18, which recordings of that time still have
    and ``VIGIL_SEGMENT_COPIES=keep`` still makes."""
    if request.node.get_closest_marker("copies_kept") is None:
        yield
        return
    before = os.environ.get("VIGIL_SEGMENT_COPIES")
    os.environ["VIGIL_SEGMENT_COPIES"] = "keep"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("VIGIL_SEGMENT_COPIES", None)
        else:
            os.environ["VIGIL_SEGMENT_COPIES"] = before


@pytest.fixture
def app_factory(tmp_path: Path) -> Iterator[Callable[..., Vigil]]:
    apps: list[Vigil] = []

    def factory(**overrides: object) -> Vigil:
        settings = Settings(data_dir=tmp_path / "vigil", **overrides)  # type: ignore[arg-type]
        app = build_app(settings)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.stop()


@pytest.fixture
def app(app_factory: Callable[..., Vigil]) -> Vigil:
    return app_factory()
