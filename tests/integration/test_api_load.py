"""The HTTP API under load (``bench/api_load.py`` at full scale): 50 devices upload distinct
clips at once by the resumable chunk protocol while 20 reviewers read cases, timelines,
playback links, byte ranges and custody logs, against ``vigil api``'s server in its own process.

No timing is asserted (the machine is shared); what is: not one error, and afterwards every
upload is exactly one catalogued, fully processed recording, finished once, and the custody
ledger audits clean (its signed heads were made while reviewers asked for proofs).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from catalog.models import Upload
from tests.load import run_load, settings_for
from workers.app import build_app

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]

DEVICES = 50
REVIEWERS = 20


def test_50_devices_upload_while_20_reviewers_read_with_no_error_and_nothing_duplicated(
    tmp_path: Path,
) -> None:
    result = run_load(tmp_path / "vigil", devices=DEVICES, reviewers=REVIEWERS)

    assert result.stats.errors == []
    assert result.upload_errors == 0
    reviewer_ok, reviewer_failed = result.reviewer_counts()
    assert reviewer_failed == 0 and reviewer_ok >= REVIEWERS * 6  # a full round each, at least

    app = build_app(settings_for(result.data_dir))
    try:
        # The server is stopped as soon as the last upload has answered: the work behind the
        # custody path (dense hashes, finalising) may be cut off there, which under a loaded
        # machine left a recording "segmented". Not a stall: on its next start the API's
        # background resumes every unfinished recording, as here. None stays unfinished.
        resumed = app.resume_unfinished()
        app.run_pipeline()
        assert resumed <= DEVICES
        uploaded = {u.recording_id: u for u in result.uploads}
        assert len(uploaded) == DEVICES  # fifty distinct recordings
        recordings = {r.id: r for r in app.catalog.recordings()}
        assert len(recordings) == DEVICES + len(result.seed_recordings)  # nothing duplicated
        for recording_id, upload in uploaded.items():
            assert recording_id is not None
            rec = recordings[recording_id]
            assert (rec.sha256, rec.size) == (upload.sha256, upload.size)
            assert rec.device_id == upload.device
            assert rec.status == "complete", (rec.id, rec.status, rec.damage)
            assert app.catalog.segments(rec.id)
        actions = Counter(e.action for e in app.catalog.events())
        assert actions["upload.finished"] == DEVICES
        assert actions["ingest"] == DEVICES + len(result.seed_recordings)
        with app.catalog.session() as session:
            uploads = list(session.scalars(select(Upload)))
        assert len(uploads) == DEVICES
        assert {u.status for u in uploads} == {"complete"}
        assert {u.recording_id for u in uploads} == set(uploaded)
        audit = app.ledger.audit(app.worm_checkpoints())
        assert audit.ok, audit.problems
        assert audit.heads_checked > 1
    finally:
        app.stop()
