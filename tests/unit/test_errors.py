"""One root error, one root per package, and each kind mapped once to an HTTP status and once to
a CLI exit code (interfaces/api/errors.py, interfaces/cli/errors.py)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from vigil_verify.errors import ErrorKind, VerifyError, VigilError

from catalog.errors import CatalogError, NotFound
from ingest.errors import IngestError, NotVideo
from ingest.uploads import ChunkHashMismatch, OffsetMismatch, UploadNotOpen
from integrity.errors import ProofError
from interfaces.api.errors import STATUS
from interfaces.cli.errors import EXIT_CODES, exit_code
from interfaces.errors import InterfaceError
from store.errors import ObjectMissing, StoreError, StoreUnavailable
from tests.architecture import LAYERS
from transcode.errors import TranscodeError
from transcode.ffmpeg import FfmpegNotFound
from workers.errors import WorkerError

ROOTS = {
    "vigil_verify": VerifyError,
    "store": StoreError,
    "catalog": CatalogError,
    "transcode": TranscodeError,
    "integrity": ProofError,
    "ingest": IngestError,
    "workers": WorkerError,
    "interfaces": InterfaceError,
}


def _all_subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _all_subclasses(sub)
    return found


@pytest.fixture(scope="module")
def every_error() -> set[type[VigilError]]:
    """Every VigilError subclass defined anywhere in Vigil (all modules imported first)."""
    for layer in LAYERS:
        for package in layer:
            root = importlib.import_module(package)
            for info in pkgutil.walk_packages(root.__path__, f"{package}."):
                if ".migrations" not in info.name and not info.name.endswith("__main__"):
                    importlib.import_module(info.name)
    return _all_subclasses(VigilError)


def test_every_kind_has_one_status_and_one_exit_code() -> None:
    assert set(STATUS) == set(ErrorKind)
    assert set(EXIT_CODES) == set(ErrorKind)
    assert all(400 <= status < 600 for status in STATUS.values())


def test_every_error_derives_from_its_own_package_root(every_error: set[type]) -> None:
    for error in every_error:
        package = error.__module__.split(".")[0]
        if error in ROOTS.values():
            continue
        assert package in ROOTS, f"{error.__module__}.{error.__qualname__}: no package root"
        assert issubclass(error, ROOTS[package]), (
            f"{error.__module__}.{error.__qualname__} is not a {ROOTS[package].__name__}"
        )


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound, 404),
        (ObjectMissing, 404),
        (OffsetMismatch, 409),
        (UploadNotOpen, 409),
        (ChunkHashMismatch, 422),
        (NotVideo, 422),
        (CatalogError, 422),
        (StoreError, 409),
        (StoreUnavailable, 503),
        (FfmpegNotFound, 503),
    ],
)
def test_statuses_of_the_errors_devices_and_reviewers_meet(
    error: type[VigilError], status: int
) -> None:
    assert STATUS[error.kind] == status


def test_the_cli_exits_2_on_every_expected_error() -> None:
    assert exit_code(NotVideo("x")) == 2
    assert exit_code(StoreUnavailable("x")) == 2
