"""Issue 14, the CLI: every ID, reason, window, date and number is checked by the one grammar
(``catalog.ids``) before anything is written. A refusal is one ``error: …`` line naming the
problem, exit status 2, no traceback, and nothing written: no custody event, no case, no link,
no file. ``vigil export`` writes only inside its target folder, and ``vigil case show`` shows
windows stored before windows were checked instead of crashing on them.

One small recording is ingested and linked to ``CASE-OK`` once for the module; each refusal is
the real ``vigil`` command run against it.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from catalog.db import make_engine
from catalog.repository import Catalog
from interfaces.cli.errors import run as run_cli
from interfaces.cli.main import cli
from tests.helpers import VIGIL
from transcode.samples import SampleSpec

pytestmark = pytest.mark.ffmpeg

Run = Callable[..., subprocess.CompletedProcess[str]]
CLIP = SampleSpec(duration_s=6.0, width=320, height=240, video_bitrate="300k", seed=14)


@dataclass(frozen=True)
class Setup:
    run: Run
    data: Path
    work: Path
    recording: str
    env: dict[str, str]


def run_here(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``vigil -q ARGS`` in this process, through the same entry point as the command
    (``interfaces.cli.errors.run``): a refusal happens before the app would do anything, and
    importing Vigil afresh for each of the refusals below cost ~2 s apiece."""
    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_argv = dict(os.environ), sys.argv
    os.environ.update(env)
    sys.argv = ["vigil", "-q", *args]
    code: int | str | None = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            run_cli(cli)
    except SystemExit as exc:
        code = exc.code
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv = saved_argv
    status = code if isinstance(code, int) else (0 if code is None else 1)
    return subprocess.CompletedProcess(args, status, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, make_clip: Callable[[SampleSpec], Path]
) -> Setup:
    work = tmp_path_factory.mktemp("cli-input")
    data = work / "data"
    env = {**os.environ, "VIGIL_DATA_DIR": str(data), "VIGIL_ACTOR": "investigator-7"}

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*VIGIL, "-q", *args],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    done = run("ingest", str(make_clip(CLIP)), "--device", "BC-0042", "--officer", "031245")
    assert done.returncode == 0, done.stderr
    recording = done.stdout.split()[1]
    linked = run("case", "link", "CASE-OK", recording, "--reason", "traffic stop")
    assert linked.returncode == 0, linked.stderr
    return Setup(run, data, work, recording, env)


@dataclass(frozen=True)
class State:
    """What a refused command must leave as it was."""

    events: int
    cases: tuple[str, ...]
    links: int
    files: tuple[str, ...]


def state(setup: Setup) -> State:
    db = sqlite3.connect(setup.data / "catalog.sqlite3")
    try:
        events = db.execute("SELECT count(*) FROM custody_events").fetchone()[0]
        cases = tuple(r[0] for r in db.execute("SELECT id FROM cases ORDER BY id"))
        links = db.execute("SELECT count(*) FROM case_links").fetchone()[0]
    finally:
        db.close()
    files = tuple(
        sorted(
            str(p.relative_to(setup.work))
            for p in setup.work.rglob("*")
            if not p.is_relative_to(setup.data)
        )
    )
    return State(events, cases, links, files)


def assert_refused(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 2, and exactly one line on stderr: ``error: …`` with every fragment in it."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if not line.startswith("notice:")]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert not done.stdout.strip(), done.stdout


REC = "{rec}"  # replaced by the module's recording ID
LINK = ("case", "link")
IDS = "an ID is 1-64 ASCII letters, digits and . _ : -"

REFUSALS: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    # Case IDs: a path, a dot or two, nothing, a newline, a slash, too long.
    ((*LINK, "../../etc/passwd", REC, "--reason", "r-1"), ("case ID '../../etc/passwd'", IDS)),
    ((*LINK, "..", REC, "--reason", "r-1"), ("case ID '..' must start with a letter or digit",)),
    ((*LINK, "", REC, "--reason", "r-1"), ("case ID '' is empty",)),
    ((*LINK, "CASE-1\n", REC, "--reason", "r-1"), ("case ID 'CASE-1\\n' may hold only",)),
    ((*LINK, "CASE/1", REC, "--reason", "r-1"), ("case ID 'CASE/1'",)),
    (("case", "unlink", "../x", REC, "--reason", "r-1"), ("case ID '../x'",)),
    (("case", "show", ".."), ("case ID '..'",)),
    (("export", "..", "{work}/out", "--reason", "disclosure"), ("case ID '..'",)),
    (("export", "../../etc/passwd", "{work}/out", "--reason", "disclosure"), ("case ID",)),
    (("export", "", "{work}/out", "--reason", "disclosure"), ("case ID '' is empty",)),
    (("export", "CASE-OK\n", "{work}/out", "--reason", "disclosure"), ("case ID 'CASE-OK\\n'",)),
    (("verify", "../x"), ("case or recording ID '../x'",)),
    # Recording, principal, device and officer IDs.
    ((*LINK, "CASE-2", "../rec", "--reason", "r-1"), ("recording ID '../rec'",)),
    (("retention", "set", "rec/../x", "evidence", "--reason", "charged"), ("recording ID",)),
    (("access", "add", "../alice", "--role", "reviewer"), ("principal ID '../alice'",)),
    (("access", "add", "bob", "--role", "device", "--device", "BC 1"), ("device ID 'BC 1'",)),
    (("access", "add", "eve", "--role", "officer", "--officer", "0\t1"), ("officer ID '0\\t1'",)),
    (("access", "add", "amy", "--role", "reviewer", "--name", "A\nB"), ("display name",)),
    (("access", "token", "alice", "--days", "nan"), ("--days nan must be a finite number",)),
    (("access", "token", "alice", "--days", "0"), ("--days 0.0", "more than 0")),
    (("ingest", "{clip}", "--device", "../BC"), ("device ID '../BC'",)),
    (("ingest", "{clip}", "--device", "BC-1", "--officer", ""), ("officer ID '' is empty",)),
    (("case", "show", "CASE-OK", "--actor", "eve\nforged"), ("principal ID 'eve\\nforged'",)),
    # Reasons: empty, blank, one or two characters, two lines.
    ((*LINK, "CASE-2", REC, "--reason", ""), ("reason is required (at least 3 characters",)),
    ((*LINK, "CASE-2", REC, "--reason", "x"), ("reason is too short: 'x'",)),
    ((*LINK, "CASE-2", REC, "--reason", " ab "), ("reason is too short",)),
    ((*LINK, "CASE-2", REC, "--reason", "a\nb c"), ("control character '\\n'",)),
    (("case", "unlink", "CASE-OK", REC, "--reason", "no"), ("reason is too short",)),
    (("export", "CASE-OK", "{work}/out", "--reason", ""), ("reason is required",)),
    (("retention", "set", REC, "evidence", "--reason", "ok"), ("reason is too short",)),
    # Windows: negative, not finite, backwards, past the end, not an offset.
    ((*LINK, "CASE-2", REC, "--from", "-5", "--reason", "r-1"), ("window start -5 s is before",)),
    ((*LINK, "CASE-2", REC, "--from", "nan", "--reason", "r-1"), ("window start nan is not a",)),
    ((*LINK, "CASE-2", REC, "--to", "inf", "--reason", "r-1"), ("window end inf is not a finite",)),
    ((*LINK, "CASE-2", REC, "--from", "4", "--to", "2", "--reason", "r-1"), ("must end after",)),
    ((*LINK, "CASE-2", REC, "--to", "1:00", "--reason", "r-1"), ("ends at 60 s, past the end",)),
    ((*LINK, "CASE-2", REC, "--from", "0:07", "--reason", "r-1"), ("starts at 7 s, at or past",)),
    ((*LINK, "CASE-2", REC, "--from", "1:75", "--reason", "r-1"), ("--from '1:75' is not a time",)),
    ((*LINK, "CASE-2", REC, "--to", "soon", "--reason", "r-1"), ("--to 'soon' is not a time",)),
    # Dates and periods.
    (("ingest", "{clip}", "--device", "BC-1", "--start", "2026-13-45T00:00:00Z"), ("--start",)),
    (("ingest", "{clip}", "--device", "BC-1", "--start", "yesterday"), ("--start 'yesterday'",)),
    (("ingest", "{clip}", "--device", "BC-1", "--start", "2026-11-27T09:30:00"), ("time zone",)),
    (("ingest", "{clip}", "--device", "BC-1", "--device-clock", "2026-11-27T25:00Z"), ("clock",)),
    (("ingest", "{clip}", "--device", "BC-1", "--start", "9999-12-31T23:00-08:00"), ("outside",)),
    (("stats", "hours", "--since", "2026-02-30"), ("--since '2026-02-30' is not a day",)),
    (("stats", "hours", "--until", "9999-12-31"), ("is outside 1970-01-01 to 2999-12-31",)),
    (("stats", "share", "--since", "2026-11-30", "--until", "2026-11-01"), ("ends (2026-11-01)",)),
    (("stats", "gaps", "--since", "2000-01-01", "--until", "2026-01-01"), ("longer than 3660",)),
    (("stats", "hours", "--tz", "../../etc/passwd"), ("unknown time zone",)),
    (("stats", "retention", "--within", "nan"), ("--within nan must be a finite number",)),
]


@pytest.mark.parametrize(("args", "fragments"), REFUSALS)
def test_refused_with_one_line_exit_2_and_nothing_written(
    setup: Setup,
    make_clip: Callable[[SampleSpec], Path],
    args: tuple[str, ...],
    fragments: tuple[str, ...],
) -> None:
    names = {"rec": setup.recording, "work": str(setup.work), "clip": str(make_clip(CLIP))}
    argv = [a.format(**names) if "{" in a else a for a in args]
    before = state(setup)
    done = run_here(setup.env, *argv)
    assert_refused(done, *fragments)
    assert state(setup) == before


def test_export_writes_only_inside_its_target_folder(setup: Setup) -> None:
    target = setup.work / "exports" / "inner"
    target.mkdir(parents=True)
    done = setup.run("export", "CASE-OK", str(target), "--reason", "disclosure to prosecutor")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (setup.work / "exports").iterdir()) == ["inner"]
    assert [p.name for p in target.iterdir()] == ["CASE-OK"]
    assert (target / "CASE-OK" / "manifest.json").is_file()
    assert f"exported CASE-OK to {target.resolve() / 'CASE-OK'}" in done.stdout


def test_export_refuses_a_package_folder_that_is_a_link_elsewhere(setup: Setup) -> None:
    target, elsewhere = setup.work / "shared", setup.work / "elsewhere"
    target.mkdir()
    elsewhere.mkdir()
    (target / "CASE-OK").symlink_to(elsewhere, target_is_directory=True)
    before = state(setup)
    done = setup.run("export", "CASE-OK", str(target), "--reason", "disclosure")
    assert_refused(done, "is a link or leads outside")
    assert list(elsewhere.iterdir()) == []
    assert state(setup) == before


def test_case_show_flags_windows_stored_before_they_were_checked(setup: Setup) -> None:
    """Links written straight into the catalogue (as before the fix): a negative start, an
    infinite end, an end past the recording. ``case show`` shows each flagged, exit 0."""
    catalog = Catalog(make_engine(f"sqlite:///{setup.data / 'catalog.sqlite3'}"))
    windows = {"LEGACY-NEG": (-5.0, None), "LEGACY-INF": (0.0, math.inf), "LEGACY-END": (1, 999)}
    try:
        for case_id, (lo, hi) in windows.items():
            catalog.link(case_id, setup.recording, from_s=lo, to_s=hi, reason="old", actor="t")
    finally:
        catalog.engine.dispose()
    expected = {
        "LEGACY-NEG": "INVALID: window start -5 s is before the start",
        "LEGACY-INF": "0:00:00.000-inf (INVALID: window end inf is not a finite",
        "LEGACY-END": "INVALID: the window ends at 999 s, past the end of the recording",
    }
    for case_id, flag in expected.items():
        shown = setup.run("case", "show", case_id)
        assert shown.returncode == 0, shown.stderr
        assert "Traceback" not in shown.stderr
        assert flag in shown.stdout, shown.stdout


def test_valid_windows_and_reasons_still_link(setup: Setup) -> None:
    linked = setup.run(
        "case", "link", "CASE-W", setup.recording, "--from", "0:01", "--to", "4.5",
        "--reason", "  window of the stop  ",
    )  # fmt: skip
    assert linked.returncode == 0, linked.stderr
    assert f"linked {setup.recording} (1-4.5 s) to CASE-W" in linked.stdout
    shown = setup.run("case", "show", "CASE-W")
    assert shown.returncode == 0, shown.stderr
    assert "window 0:00:01.000-0:00:04.500\n" in shown.stdout + "\n"
    events = setup.run("events", "--case", "CASE-W")
    assert "case.link" in events.stdout
    assert "reason: window of the stop" in events.stdout  # stored stripped
