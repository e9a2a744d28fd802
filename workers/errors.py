"""The runtime's root error."""

from __future__ import annotations

from vigil_verify.errors import ErrorKind, VigilError


class WorkerError(VigilError):
    """Root of the errors raised by the runtime (settings, buses, stages, wiring)."""

    kind = ErrorKind.FAILED


class StageError(WorkerError):
    """A stage could not finish its work on a message."""
