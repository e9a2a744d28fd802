"""The reviewer web page in a real headless browser (Debian's Chromium, driven by Playwright),
against a real server on loopback: a reviewer pastes a token, opens a case whose footage has a
five-second hole, and sees the case, the timeline to scale with the gap, the player loaded with
the original, and the custody log (with the page's own views in it); Verify turns every segment
verified. A full-page screenshot is kept in test-artifacts/web-case-page.png.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from catalog.models import Segment
from tests.helpers import ingest_and_process
from tests.integration.test_api import serve
from tests.integration.test_rotation import dimensions, phone_clip
from transcode.samples import SampleSpec
from workers.app import Vigil

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
# Footage with a hole: 30 s recorded, timestamps jump by 5 s at 12 s (timeline of 35 s).
HOLE_AT_S = 12.0
HOLE = SampleSpec(duration_s=30, width=320, height=240, hole_at_s=HOLE_AT_S, hole_s=5.0, seed=7)
CASE = "CASE-WEB"
OTHER = "CASE-OTHER"
TIMEOUT_MS = 60_000
# Chromium logs every refused request; the test provokes a 401 and 403s on purpose.
EXPECTED_CONSOLE = re.compile(r"Failed to load resource: .* status of 40[13] ")

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        why = f"{CHROMIUM} missing: the test command installs Debian's chromium"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(f"{CHROMIUM} missing (install Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        # As root, Chromium refuses to start without --no-sandbox.
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def site(
    app_factory: Callable[..., Vigil], make_clip: Callable[[SampleSpec], Path]
) -> Iterator[tuple[Vigil, str, str, str]]:
    """A server with CASE-WEB (one recording, with a gap) assigned to reviewer alice, and
    CASE-OTHER, which she is not assigned to."""
    app = app_factory()
    rec_id = ingest_and_process(app, make_clip(HOLE))
    app.cases.link(CASE, rec_id, from_s=None, to_s=None, reason="incident 4711", actor="sam")
    app.cases.link(OTHER, rec_id, from_s=None, to_s=None, reason="another matter", actor="sam")
    app.access.add_principal("alice", "reviewer", display_name="Alice Reviewer", actor="setup")
    app.access.assign(CASE, "alice", actor="setup")
    token = app.access.issue_token("alice", label="web", actor="setup").token
    for url in serve(app):
        yield app, url, rec_id, token


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def open_page(browser: Browser, url: str) -> tuple[Page, list[str]]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []  # script errors and console errors (CSP violations among them)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def console(msg: ConsoleMessage) -> None:
        if msg.type == "error" and not EXPECTED_CONSOLE.match(msg.text):
            errors.append(f"{msg.text} ({msg.location.get('url')})")

    page.on("console", console)
    page.goto(url)
    return page, errors


def test_a_reviewer_sees_the_case_timeline_with_its_gap_plays_verifies_and_reads_custody(
    browser: Browser, site: tuple[Vigil, str, str, str]
) -> None:
    from playwright.sync_api import expect

    app, url, rec_id, token = site
    segments: list[Segment] = app.catalog.segments(rec_id)
    assert len(segments) >= 3
    page, errors = open_page(browser, url)

    # A wrong token is refused in words a person understands.
    expect(page.get_by_text("Paste your API token to see your cases.")).to_be_visible()
    page.get_by_label("API token").fill("vgl_not-a-real-token")
    page.get_by_role("button", name="Use token").click()
    expect(page.get_by_role("alert")).to_contain_text("Token not accepted")

    # The real token: the reviewer's cases, only the assigned one.
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Use token").click()
    expect(page.get_by_role("alert")).to_be_hidden()
    expect(page.get_by_text("Signed in as Alice Reviewer (alice, reviewer)")).to_be_visible()
    expect(page.get_by_role("link", name=CASE)).to_be_visible()
    expect(page.get_by_role("link", name=OTHER)).to_have_count(0)
    page.get_by_role("link", name=CASE).click()

    # The case page.
    expect(page.get_by_role("heading", name=f"Case {CASE}", level=1)).to_be_visible()
    expect(page.get_by_text(re.compile(r"not continuous: 1 gap"))).to_be_visible()
    blocks = page.get_by_role("button", name=re.compile(r"^Segment \d+, "))
    expect(blocks).to_have_count(len(segments))
    for seg in segments:
        block = page.get_by_role("button", name=re.compile(rf"^Segment {seg.index}, "))
        expect(block).to_contain_text(f"Segment {seg.index}")
        expect(block).to_contain_text("hashed")

    # The gap: a block of its own, labelled with its length, where the hole is.
    gap = page.get_by_role("img", name=re.compile(r"^gap "))
    expect(gap).to_have_count(1)
    label = page.get_by_text(re.compile(r"^gap \d+\.\d s$"))
    expect(label).to_be_visible()
    gap_seconds = float(re.findall(r"[\d.]+", label.inner_text())[0])
    assert gap_seconds == pytest.approx(HOLE.hole_s, abs=0.2)
    expect(
        page.get_by_text(re.compile(r"No footage for 5\.\d s, from 1[12]\.\d s"))
    ).to_be_visible()

    # Drawn to scale: blocks sit at start_s / span of the bar, and the gap at 12 s.
    bar = page.get_by_role("group", name=f"Segments of recording {rec_id}")
    bar_box = bar.bounding_box()
    assert bar_box is not None
    span = max(s.end_s for s in segments)
    px = (bar_box["width"] - 2) / span  # inside the bar's 1px borders
    for seg in segments:
        box = page.get_by_role("button", name=re.compile(rf"^Segment {seg.index}, ")).bounding_box()
        assert box is not None
        assert box["x"] - bar_box["x"] - 1 == pytest.approx(seg.start_s * px, abs=3)
        assert box["width"] == pytest.approx((seg.end_s - seg.start_s) * px, abs=3)
    gap_box = gap.bounding_box()
    assert gap_box is not None
    assert gap_box["x"] - bar_box["x"] - 1 == pytest.approx(HOLE_AT_S * px, abs=0.2 * px)
    assert gap_box["width"] == pytest.approx(gap_seconds * px, abs=3)

    # The player has the original (signed link, no token in it) and has read its metadata.
    video = page.locator("video")
    page.wait_for_function("() => document.querySelector('video').readyState >= 1")
    duration = video.evaluate("v => v.duration")
    assert duration == pytest.approx(HOLE.span_s, abs=0.5)
    src = video.evaluate("v => v.currentSrc")
    assert f"/api/v1/media/{rec_id}/original?by=alice" in src
    assert token not in src and token not in page.url
    assert page.evaluate("Object.values(sessionStorage)") == [token]
    assert page.evaluate("localStorage.length") == 0
    expect(page.get_by_text(f"Recording {rec_id} · ", exact=False)).to_be_visible()

    # Clicking a segment seeks the player to its start; so does Enter on a focused one.
    at_start = "s => Math.abs(document.querySelector('video').currentTime - s) < 0.1"
    second, third = segments[1], segments[2]
    page.get_by_role("button", name=re.compile(rf"^Segment {second.index}, ")).click()
    page.wait_for_function(at_start, arg=second.start_s)
    page.get_by_role("button", name=re.compile(rf"^Segment {third.index}, ")).focus()
    page.keyboard.press("Enter")
    page.wait_for_function(at_start, arg=third.start_s)
    expect(page.get_by_text(f"segment {third.index} (hashed)")).to_be_visible()

    # The custody log: what happened to the footage, and the page's own reads, proved.
    expect(page.get_by_text(re.compile(r"^Loaded at "))).to_be_visible()
    log = page.get_by_role("table").filter(has=page.get_by_role("columnheader", name="Signed log"))
    for what in ("case timeline", "custody log"):
        row = log.get_by_role("row").filter(has_text=what)
        expect(row.first).to_contain_text("alice")
        expect(row.first).to_contain_text("view")
        expect(row.first).to_contain_text(f"case {CASE}")
        # Just written: proved from the next signed head, not yet from this one.
        expect(row.first).to_contain_text(
            re.compile(r"not yet in a signed checkpoint|in signed log at position \d+")
        )
    for action in ("ingest", "segment.stored", "case.link"):
        expect(log.get_by_role("row").filter(has_text=action).first).to_contain_text(
            re.compile(r"in signed log at position \d+")
        )
    # The ledger signs a head (every VIGIL_LEDGER_INTERVAL_S); after a refresh the page's own
    # reads are proved, and the player's range requests show as custody events too.
    app.ledger.checkpoint()
    page.get_by_role("button", name="Refresh log").click()
    timeline_view = log.get_by_role("row").filter(has_text="case timeline").first
    expect(timeline_view).to_contain_text(re.compile(r"in signed log at position \d+"))
    media_view = log.get_by_role("row").filter(has_text=re.compile(r"media \S+ bytes \d+\+\d+"))
    expect(media_view.first).to_contain_text(f"recording {rec_id}")

    # Verify: every segment is recomputed, reported intact, and shown verified.
    page.get_by_role("button", name="Verify", exact=True).click()
    expect(page.get_by_text(re.compile(r"^Verified at .* all \d+ segments match"))).to_be_visible()
    results = page.get_by_role("region", name=f"Verification of recording {rec_id}")
    expect(results.get_by_role("row").filter(has_text="intact")).to_have_count(len(segments) + 1)
    for seg in segments:
        block = page.get_by_role("button", name=re.compile(rf"^Segment {seg.index}, "))
        expect(block).to_contain_text("verified")
    expect(log.get_by_role("row").filter(has_text="verify").first).to_be_visible()

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "web-case-page.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    width, height = png_size(data)
    assert width == 1280 and height >= 1200, (width, height)
    assert len(data) > 50_000

    # A case she is not assigned to: the server's reason, in place of the timeline.
    page.goto(f"{url}/#/cases/{OTHER}")
    expect(page.get_by_role("heading", name=f"Case {OTHER}", level=1)).to_be_visible()
    expect(page.get_by_text(f"Not allowed: alice is not assigned to case {OTHER}.")).to_have_count(
        2  # the timeline and the custody log
    )
    assert page.get_by_role("button", name=re.compile(r"^Segment ")).count() == 0
    assert errors == []
    page.close()


UPRIGHT_JS = """async (at) => {
  const v = document.querySelector('video');
  const once = (what) => new Promise((ok) => v.addEventListener(what, ok, {once: true}));
  if (v.readyState < 1) await once('loadedmetadata');
  v.currentTime = at;
  await once('seeked');
  if (v.readyState < 2) await once('canplay');
  const c = document.createElement('canvas');
  c.width = 24; c.height = 32;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0, 24, 32);
  const d = g.getImageData(0, 0, 24, 32).data;
  const gray = [];
  for (let i = 0; i < d.length; i += 4) {
    gray.push(Math.round(0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2]));
  }
  return {width: v.videoWidth, height: v.videoHeight, gray};
}"""


def _gray(ffmpeg: str, source: Path, at: float, turn: str = "") -> list[int]:
    """ffmpeg's own picture of ``source`` at ``at`` s, turned by its display matrix (ffmpeg
    autorotates), then by ``turn`` (a filter, "" for none), as 24x32 gray."""
    chain = ",".join(f for f in (turn, "scale=24:32:flags=area", "format=gray") if f)
    done = subprocess.run(
        [ffmpeg, "-v", "error", "-ss", str(at), "-i", str(source), "-frames:v", "1",
         "-vf", chain, "-f", "rawvideo", "pipe:1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return list(done.stdout)


def _distance(a: list[int], b: list[int]) -> float:
    assert len(a) == len(b) == 24 * 32
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def test_a_phone_recording_with_a_display_matrix_plays_upright(
    browser: Browser, app_factory: Callable[..., Vigil], ffmpeg: str, tmp_path: Path
) -> None:
    """Issue 17: a phone MOV whose pictures are stored on their side (display matrix 90°) is
    played by Chromium from its original, turned upright: portrait, and the picture the
    browser draws is ffmpeg's upright picture, not the one turned the other way."""
    from playwright.sync_api import expect

    phone = phone_clip(ffmpeg, tmp_path, 90)
    assert dimensions(ffmpeg, phone) == (320, 240)  # stored on its side
    app = app_factory()
    rec_id = ingest_and_process(app, phone)
    assert app.catalog.recording(rec_id).rotation in (90, 270)  # catalogued as turned
    app.cases.link("CASE-PHONE", rec_id, from_s=None, to_s=None, reason="stop", actor="sam")
    app.access.add_principal("alice", "reviewer", display_name="Alice Reviewer", actor="setup")
    app.access.assign("CASE-PHONE", "alice", actor="setup")
    token = app.access.issue_token("alice", label="web", actor="setup").token
    for url in serve(app):
        page, errors = open_page(browser, url)
        page.get_by_label("API token").fill(token)
        page.get_by_role("button", name="Use token").click()
        page.get_by_role("link", name="CASE-PHONE").click()
        expect(page.get_by_text(f"Recording {rec_id} · ", exact=False)).to_be_visible()
        drawn = page.evaluate(UPRIGHT_JS, 2.0)
        assert (drawn["width"], drawn["height"]) == (240, 320)  # portrait, as the phone held
        upright = _distance(drawn["gray"], _gray(ffmpeg, phone, 2.0))
        other_way = _distance(drawn["gray"], _gray(ffmpeg, phone, 2.0, "transpose=2,transpose=2"))
        assert upright < 12 < other_way, (upright, other_way)
        assert errors == []
