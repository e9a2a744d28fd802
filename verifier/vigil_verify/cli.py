"""``vigil-verify PACKAGE``: check a Vigil export package offline.

Exit status:

- ``0`` (``CLEAN``): everything is intact and the log checks out;
- ``1`` (``PROBLEMS``): the package is well formed and something in it does not check out (a
  segment edited, missing or foreign, a signature or proof that fails, a manifest entry that
  differs from the signed log, a recording the signed log does not link to the package's case,
  a segment outside the windows it links);
- ``2`` (``MALFORMED``): the package, or part of it, cannot be read as its format requires (a
  file missing, not JSON, of the wrong shape; a timestamp token, key or proof that does not
  parse), or is not a folder, or ``--key`` / ``--trusted-checkpoint`` cannot be read. The report
  still says what could be checked, and names each thing that could not (``MALFORMED`` lines,
  ``"malformed"`` in ``--json``).

A package never makes the verifier crash: whatever it holds is a finding. Should a check still
fail in a way nobody foresaw, the command says so in one line and exits 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vigil_verify import __version__
from vigil_verify.cosignature import CosignatureError, parse_vkey
from vigil_verify.footage import find_ffmpeg
from vigil_verify.ledger import WitnessPolicy
from vigil_verify.report import PackageReport, render, verify_package
from vigil_verify.untrusted import describe


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
    parser.add_argument(
        "--witness",
        action="append",
        default=[],
        metavar="VKEY",
        help="a witness's verifier key (name+keyid+base64, cosignature/v1), obtained from the"
        " witness's operator; repeat for each. The package's tree head must carry their"
        " cosignatures",
    )
    parser.add_argument(
        "--quorum",
        type=int,
        help="how many of the --witness keys must have cosigned (default: all of them)",
    )
    parser.add_argument("--ffmpeg", help="ffmpeg to re-decode changed segments with")
    parser.add_argument(
        "--c2pa-trust",
        type=Path,
        metavar="PEM",
        help="the C2PA trust anchors (PEM) the signer of the package's clips must chain to, e.g."
        " the agency's root certificate (needs c2pa-python)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable report")
    parser.add_argument("--version", action="version", version=f"vigil-verify {__version__}")
    return parser


CLEAN = 0
PROBLEMS = 1
MALFORMED = 2

UNFORESEEN = "vigil-verify: the check stopped unforeseen"
"""The start of the one line printed when a check fails in a way nobody foresaw (a bug)."""


def exit_status(report: PackageReport) -> int:
    """``MALFORMED`` if anything could not be read, else ``PROBLEMS`` if anything does not
    check out, else ``CLEAN``."""
    if report.malformed:
        return MALFORMED
    return CLEAN if report.clean else PROBLEMS


def check(args: argparse.Namespace) -> int:
    """Check the package ``args`` name, print the report; the exit status."""
    package: Path = args.package
    if not package.is_dir():
        print(f"vigil-verify: {package} is not a folder", file=sys.stderr)
        return MALFORMED
    try:
        keys = tuple(parse_vkey(vkey) for vkey in args.witness)
    except CosignatureError as exc:
        print(f"vigil-verify: --witness: {exc}", file=sys.stderr)
        return MALFORMED
    if args.quorum is not None and not 1 <= args.quorum <= len(keys):
        print("vigil-verify: --quorum must be 1 .. the number of --witness keys", file=sys.stderr)
        return MALFORMED
    trust = None
    if args.c2pa_trust is not None:
        try:
            trust = args.c2pa_trust.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            print(
                f"vigil-verify: --c2pa-trust: cannot read {args.c2pa_trust} ({exc})",
                file=sys.stderr,
            )
            return MALFORMED
    report = verify_package(
        package,
        pinned_key=args.key,
        trusted_checkpoint=args.trusted_checkpoint,
        ffmpeg=find_ffmpeg(args.ffmpeg),
        witnesses=WitnessPolicy(keys, args.quorum) if keys else None,
        c2pa_trust=trust,
    )
    if args.json:
        print(json.dumps({**report.to_json(), "exit_status": exit_status(report)}, indent=2))
    else:
        print(render(report), end="")
    return exit_status(report)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return check(args)
    except Exception as exc:  # never a traceback to an auditor: one line, exit 2
        print(f"{UNFORESEEN} ({describe(exc)}); please report it", file=sys.stderr)
        return MALFORMED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
