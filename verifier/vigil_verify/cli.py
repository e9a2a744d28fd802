"""``vigil-verify PACKAGE``: check a Vigil export package offline.

Exit status: 0 when everything is intact and the log checks out, 1 when anything does not,
2 when the package cannot be read at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vigil_verify import __version__
from vigil_verify.footage import find_ffmpeg
from vigil_verify.report import render, verify_package


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vigil-verify",
        description="Check a Vigil evidence export package offline: signatures, proofs, footage.",
    )
    parser.add_argument("package", type=Path, help="the exported case folder")
    parser.add_argument(
        "--key",
        type=Path,
        help="the ledger's public key (PEM) obtained independently; without it the package's"
        " own key is used and its fingerprint printed for you to compare",
    )
    parser.add_argument(
        "--trusted-checkpoint",
        type=Path,
        help="a signed tree head you saved earlier: the package's log must extend it",
    )
    parser.add_argument("--ffmpeg", help="ffmpeg to re-decode changed segments with")
    parser.add_argument("--json", action="store_true", help="machine-readable report")
    parser.add_argument("--version", action="version", version=f"vigil-verify {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    package: Path = args.package
    if not package.is_dir():
        print(f"vigil-verify: {package} is not a folder", file=sys.stderr)
        return 2
    report = verify_package(
        package,
        pinned_key=args.key,
        trusted_checkpoint=args.trusted_checkpoint,
        ffmpeg=find_ffmpeg(args.ffmpeg),
    )
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(render(report), end="")
    return 0 if report.clean else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
