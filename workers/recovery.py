"""Recovery of an unfinalised recording in the runtime: ``ingest.recovery`` wired to this
app's custody path, and what it put on record announced to the stages that follow (the dense
perceptual index, the review proxy, finalising), as a segmented original is."""

from __future__ import annotations

from ingest.recovery import Recovery
from workers.app import Vigil
from workers.errors import WorkerError
from workers.stages import SegmentStage


def recover(app: Vigil, recording_id: str, *, like: str | None, actor: str, name: str) -> Recovery:
    """Recover ``recording_id`` (``name``: as the user gave it) and announce its segments."""
    stage = app.stages.get("segment")
    if not isinstance(stage, SegmentStage):
        raise WorkerError("this process has no custody path to put a recovered stream on record")
    done = stage.recovery.recover(recording_id, like=like, actor=actor, name=name)
    if done.segmented is not None:
        for message in stage.announce(done.segmented.recording, done.segmented.segments):
            app.publish(message)
    return done
