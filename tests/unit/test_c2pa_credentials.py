"""Finding and judging an original's C2PA manifest, without ffmpeg: where the manifest store is
in an ISO BMFF file (and where none can be), what it costs for a file without one, the trust
list's checks, the finding's words, and its counter."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from catalog.repository import Event
from ingest.service import credentials_event
from integrity.credentials import (
    C2PA_BOX,
    STATES,
    CaptureCredentials,
    CredentialsError,
    CredentialsReader,
    TrustList,
    find_manifest_store,
)
from tests.c2pa_ca import TestCA
from workers.metrics import Metrics

STORE = b"\x00\x00\x00\x20jumbfake-manifest-store" + bytes(range(64))


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def c2pa_box(store: bytes, purpose: bytes = b"manifest") -> bytes:
    return box(b"uuid", C2PA_BOX + b"\0\0\0\0" + purpose + b"\0" + bytes(8) + store)


FTYP = box(b"ftyp", b"isom\0\0\2\0isomiso2avc1mp41")
MOOV = box(b"moov", bytes(40))
MDAT = box(b"mdat", bytes(1000))


def write(tmp_path: Path, data: bytes, name: str = "f.mp4") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_the_store_is_found_after_ftyp_or_anywhere_at_the_top_level(tmp_path: Path) -> None:
    for layout in (
        FTYP + c2pa_box(STORE) + MOOV + MDAT,  # where c2pa-rs writes it
        FTYP + MOOV + MDAT + c2pa_box(STORE),
    ):
        assert find_manifest_store(write(tmp_path, layout)) == STORE


def test_a_64_bit_box_size_is_followed(tmp_path: Path) -> None:
    large = struct.pack(">I4sQ", 1, b"mdat", 16 + 100) + bytes(100)
    assert find_manifest_store(write(tmp_path, FTYP + large + c2pa_box(STORE))) == STORE


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(FTYP + MOOV + MDAT, id="no C2PA box"),
        pytest.param(FTYP + box(b"uuid", bytes(16) + STORE) + MDAT, id="another uuid box"),
        pytest.param(FTYP + c2pa_box(STORE, b"merkle") + MDAT, id="a Merkle box, no store"),
        pytest.param(MOOV + c2pa_box(STORE), id="no ftyp: not ISO BMFF"),
        pytest.param(b"\x47" + bytes(187) + b"\x47" + bytes(187), id="MPEG-TS"),
        pytest.param(b"\x1a\x45\xdf\xa3" + bytes(60), id="Matroska"),
        pytest.param(FTYP + struct.pack(">I4s", 1 << 30, b"mdat") + c2pa_box(STORE), id="overrun"),
        pytest.param(FTYP + struct.pack(">I4s", 4, b"free") + c2pa_box(STORE), id="size < header"),
        pytest.param(FTYP[:6], id="truncated"),
        pytest.param(b"", id="empty"),
    ],
)
def test_where_there_is_no_store_none_is_found(tmp_path: Path, data: bytes) -> None:
    assert find_manifest_store(write(tmp_path, data)) is None
    assert CredentialsReader(None).read(tmp_path / "f.mp4") is None  # and nothing is recorded


def test_a_large_file_without_a_manifest_costs_a_walk_of_box_headers(tmp_path: Path) -> None:
    path = tmp_path / "long.mp4"
    with path.open("wb") as fh:
        fh.write(FTYP + MOOV + struct.pack(">I4sQ", 1, b"mdat", 16 + (4 << 30)))
        fh.truncate(fh.tell() + (4 << 30))  # 4 GiB of footage, sparse: nothing to read
    started = time.perf_counter()
    assert CredentialsReader(None).read(path) is None
    assert time.perf_counter() - started < 0.05


def test_a_store_that_c2pa_cannot_read_is_invalid_with_the_reason(tmp_path: Path) -> None:
    path = write(tmp_path, FTYP + c2pa_box(STORE) + MOOV + MDAT, "BC-0042.mp4")
    found = CredentialsReader(None).read(path)
    assert found is not None
    assert found.state == "invalid"
    assert found.signer is None
    assert found.manifest_size == len(STORE)
    assert len(found.failures) == 1 and found.failures[0].startswith("unreadable: ")
    assert str(tmp_path) not in found.failures[0]
    assert found.describe().startswith("signed at capture: invalid (unreadable: ")


def test_the_trust_list_is_checked_when_loaded(tmp_path: Path) -> None:
    ca = TestCA.make()
    good = TrustList.load(ca.write_trust_anchors(tmp_path / "anchors.pem"))
    assert good.pem == ca.pem.decode()
    assert len(good.sha256) == 64
    for path, says in (
        (tmp_path / "absent.pem", "No such file"),
        (write(tmp_path, b"hello\n", "text.pem"), "not a PEM file"),
        (write(tmp_path, b"", "empty.pem"), "C2PA trust anchors"),
    ):
        with pytest.raises(CredentialsError, match=says) as raised:
            TrustList.load(path)
        assert str(path) in str(raised.value)


def finding(**changes: object) -> CaptureCredentials:
    base = CaptureCredentials(
        state="valid",
        signer="CN=BC-0042, O=Acme, C=US",
        issuer="CN=Acme Root, O=Acme, C=US",
        claim_generator="AcmeCam/2.1",
        manifest_sha256="ab" * 32,
        manifest_size=2852,
        trust_list_sha256="cd" * 32,
    )
    return base.model_copy(update=changes)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({}, "signed at capture by CN=BC-0042, O=Acme, C=US: valid"),
        (
            {"state": "untrusted", "failures": ("signingCredential.untrusted",)},
            "signed at capture by CN=BC-0042, O=Acme, C=US: untrusted"
            " (signingCredential.untrusted)",
        ),
        (
            {"state": "invalid", "failures": ("assertion.bmffHash.mismatch",)},
            "signed at capture by CN=BC-0042, O=Acme, C=US: invalid (assertion.bmffHash.mismatch)",
        ),
        (
            {"state": "invalid", "signer": None, "failures": ("x",)},
            "signed at capture: invalid (x)",
        ),
    ],
)
def test_the_finding_in_words(changes: dict[str, object], words: str) -> None:
    assert finding(**changes).describe() == words


def test_the_event_carries_the_finding_and_reads_back() -> None:
    found = finding()
    event = credentials_event(found, "alice", "rec-0123456789abcdef")
    assert event == Event(
        "original.c2pa", "alice", "rec-0123456789abcdef", reason=found.describe(), detail=found
    )
    assert CaptureCredentials.parse(found.model_dump_json()) == found
    assert CaptureCredentials.parse('{"state": "sort of"}') is None
    assert CaptureCredentials.parse(None) is None


def test_each_state_is_counted_from_zero() -> None:
    metrics = Metrics()
    for state in STATES:
        labels = {"state": state}
        assert metrics.registry.get_sample_value("vigil_c2pa_manifests_total", labels) == 0
    metrics.c2pa_manifest("invalid")
    assert metrics.registry.get_sample_value("vigil_c2pa_manifests_total", {"state": "invalid"})
