"""The house rules hold: every import points down the layers, the verifier stands alone, and no
module or function outgrows its limit (tests/architecture.py; docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.architecture import (
    LAYERS,
    PACKAGE_DIRS,
    ROOT,
    layer_violations,
    size_exceptions,
    size_violations,
    verifier_violations,
)


def test_every_import_points_down_the_layers() -> None:
    found = layer_violations(PACKAGE_DIRS)
    assert not found, "imports against the layers:\n" + "\n".join(map(str, found))


def test_the_verifier_needs_only_the_standard_library_cryptography_and_numpy() -> None:
    found = verifier_violations(PACKAGE_DIRS["vigil_verify"])
    assert not found, "\n".join(map(str, found))


def test_every_package_is_in_a_layer() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    layered = {name for layer in LAYERS for name in layer}
    assert packages <= layered, f"not in any layer: {sorted(packages - layered)}"


def test_no_module_or_function_outgrows_its_limit() -> None:
    exceptions = size_exceptions()
    found = size_violations(list(PACKAGE_DIRS.values()), exceptions)
    assert not found, "\n".join(map(str, found))


def test_every_size_exception_names_a_reason_and_still_applies() -> None:
    exceptions = size_exceptions()
    for where, reason in exceptions.items():
        assert len(reason.strip()) >= 20, f"{where}: give the reason it may be this big"
        assert (ROOT / where.split(":")[0]).is_file(), f"{where}: no such file any more"


# -- the checks themselves find what they should (each would fail on a bad tree) --------------


def _package(root: Path, name: str, files: dict[str, str]) -> Path:
    directory = root / name
    directory.mkdir()
    (directory / "__init__.py").write_text("")
    for file, text in files.items():
        (directory / file).write_text(text)
    return directory


def test_an_upward_a_sideways_and_a_hidden_import_are_each_named(tmp_path: Path) -> None:
    dirs = {
        "store": _package(tmp_path, "store", {"a.py": "import catalog.models\n"}),
        "catalog": _package(
            tmp_path,
            "catalog",
            {"b.py": "def f() -> None:\n    from transcode.probe import probe\n"},
        ),
        "transcode": _package(tmp_path, "transcode", {"c.py": "from store.base import X\n"}),
        "integrity": _package(
            tmp_path,
            "integrity",
            {"d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import ingest\n"},
        ),
    }
    found = sorted(str(v.message) for v in layer_violations(dirs))
    assert found == [
        "catalog imports transcode.probe (sideways: transcode)",
        "integrity imports ingest (up: ingest)",
        "store imports catalog.models (up: catalog)",
    ]


def test_a_verifier_import_of_a_server_package_is_named(tmp_path: Path) -> None:
    directory = _package(tmp_path, "vigil_verify", {"x.py": "import json\nimport catalog.db\n"})
    assert [v.message for v in verifier_violations(directory)] == [
        "vigil_verify imports catalog.db"
    ]


@pytest.mark.parametrize(("lines", "expected"), [(500, 0), (501, 1)])
def test_module_length_limit(tmp_path: Path, lines: int, expected: int) -> None:
    directory = _package(tmp_path, "store", {"big.py": "x = 1\n" * lines})
    assert len(size_violations([directory], {})) == expected


def test_function_length_limit_and_its_exception(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(80))
    directory = _package(tmp_path, "store", {"f.py": f"def long() -> None:\n{body}"})
    found = size_violations([directory], {})
    assert [v.message for v in found] == ["function long of 81 lines (> 80)"]
    where = f"{(directory / 'f.py')}:long"
    assert size_violations([directory], {where: "a reason long enough to count"}) == []


def test_the_tests_never_import_the_benchmarks() -> None:
    """Benchmarks sit above everything (they may use the tests' services and load engine);
    nothing the suite runs may depend on them."""
    from tests.architecture import imported_modules, python_files

    found = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in python_files(ROOT / "tests")
        for line, module in imported_modules(ast.parse(path.read_text()))
        if module.split(".")[0] == "bench"
    ]
    assert not found, "\n".join(found)
