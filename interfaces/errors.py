"""The interfaces' root error."""

from __future__ import annotations

from vigil_verify.errors import ErrorKind, VigilError


class InterfaceError(VigilError):
    """Root of the errors raised by the interfaces themselves (the development services of
    ``vigil services``); what the layers below raise keeps its own root."""

    kind = ErrorKind.FAILED
