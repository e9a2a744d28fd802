"""The house rules, as code: which package may import which, and how big a module or a function
may grow. ``tests/unit/test_architecture.py`` holds the repository to them; docs/architecture.md
explains them.

Layers, lowest first. A module may import its own package and any package of a lower layer,
never one of its own layer or above. ``catalog`` and ``transcode`` share a layer: neither
imports the other.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAYERS: tuple[tuple[str, ...], ...] = (
    ("vigil_verify",),
    ("store",),
    ("catalog", "transcode"),
    ("integrity",),
    ("ingest",),
    ("workers",),
    ("interfaces",),
)
"""Vigil's packages, lowest layer first."""

PACKAGE_DIRS: dict[str, Path] = {
    "vigil_verify": ROOT / "verifier" / "vigil_verify",
    **{name: ROOT / name for layer in LAYERS[1:] for name in layer},
}

VERIFIER_MAY_IMPORT = frozenset({"cryptography", "numpy", "vigil_verify", "imageio_ffmpeg", "c2pa"})
"""The stand-alone verifier's whole world beyond the standard library (verifier/pyproject);
``imageio_ffmpeg`` only where installed, to find an ffmpeg binary; ``c2pa`` (c2pa-python) only
where installed, to read clips' C2PA manifests (``vigil_verify.clips`` says when it is not)."""

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        where = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{where}:{self.line}: {self.message}"


def rank_of(package: str, layers: Sequence[Sequence[str]] = LAYERS) -> int | None:
    for rank, layer in enumerate(layers):
        if package in layer:
            return rank
    return None


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every absolute module an ``import`` or ``from … import`` names, anywhere in the tree
    (inside functions and ``TYPE_CHECKING`` blocks too), with its line."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def python_files(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*.py")):
        if "migrations" not in path.relative_to(directory).parts:
            yield path


def layer_violations(
    package_dirs: dict[str, Path], layers: Sequence[Sequence[str]] = LAYERS
) -> list[Violation]:
    """Imports that point up or sideways between ``layers``."""
    found: list[Violation] = []
    for package, directory in package_dirs.items():
        own = rank_of(package, layers)
        assert own is not None, f"{package} is in no layer"
        for path in python_files(directory):
            for line, module in imported_modules(ast.parse(path.read_text(), str(path))):
                target = module.split(".")[0]
                theirs = rank_of(target, layers)
                if target == package or theirs is None:
                    continue
                if theirs >= own:
                    way = "sideways" if theirs == own else "up"
                    found.append(
                        Violation(path, line, f"{package} imports {module} ({way}: {target})")
                    )
    return found


def verifier_violations(directory: Path) -> list[Violation]:
    """Imports of the stand-alone verifier beyond the standard library and its two deps."""
    found: list[Violation] = []
    for path in python_files(directory):
        for line, module in imported_modules(ast.parse(path.read_text(), str(path))):
            top = module.split(".")[0]
            if top not in VERIFIER_MAY_IMPORT and top not in sys.stdlib_module_names:
                found.append(Violation(path, line, f"vigil_verify imports {module}"))
    return found


def size_exceptions(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """``[tool.vigil.size-exceptions]``: "path" or "path:function" → the reason it may be big."""
    config = tomllib.loads(pyproject.read_text())
    table: dict[str, str] = config.get("tool", {}).get("vigil", {}).get("size-exceptions", {})
    return table


def size_violations(
    directories: Sequence[Path],
    exceptions: dict[str, str],
    *,
    max_module: int = MAX_MODULE_LINES,
    max_function: int = MAX_FUNCTION_LINES,
) -> list[Violation]:
    """Modules over ``max_module`` lines and functions over ``max_function``, bar exceptions."""
    found: list[Violation] = []
    for directory in directories:
        for path in python_files(directory):
            name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
            text = path.read_text()
            lines = text.count("\n")
            if lines > max_module and name not in exceptions:
                found.append(Violation(path, 1, f"module of {lines} lines (> {max_module})"))
            for node in ast.walk(ast.parse(text, str(path))):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > max_function and f"{name}:{node.name}" not in exceptions:
                    found.append(
                        Violation(
                            path,
                            node.lineno,
                            f"function {node.name} of {length} lines (> {max_function})",
                        )
                    )
    return found
