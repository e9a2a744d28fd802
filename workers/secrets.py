"""Secrets a process needs and the code never holds: the key that signs media links.

It comes from configuration (``VIGIL_API_SECRET``). Production refuses to serve without it.
Development generates one per deployment on first start, in the data folder (``api-link-secret``,
mode 0600): written aside and hard-linked into place, so that it appears whole or not at all and
processes starting together share the one that won. The secret itself is never logged; what is
said, once per start, is where it is kept and that production will not accept it.
"""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vigil_verify.errors import ErrorKind

from workers.errors import WorkerError
from workers.settings import Settings

GENERATED_BYTES = 32  # 256 bits, written as 64 hex digits


class SecretError(WorkerError):
    """A secret is missing, unreadable or kept where others can read it."""

    kind = ErrorKind.INVALID


@dataclass(frozen=True)
class LinkSecret:
    """The media-link secret, and what to say once at start when it is a development one."""

    value: bytes
    notice: str | None = None

    def __repr__(self) -> str:  # never the value, in a log or a traceback
        return f"LinkSecret(<{len(self.value)} bytes>, notice={self.notice!r})"


def link_secret(settings: Settings) -> LinkSecret:
    """The configured secret; in development without one, the deployment's generated secret
    (made now if this is the first start). Production without one is a ``SecretError``."""
    configured = settings.api_secret.get_secret_value()
    if configured:
        return LinkSecret(configured.encode())
    if settings.environment == "production":
        raise SecretError(
            "set VIGIL_API_SECRET (at least 16 random characters): production never signs"
            " media links with a generated secret"
        )
    path = settings.dev_link_secret
    made = False
    if not path.exists():
        try:
            _create(path)
            made = True
        except FileExistsError:  # another process starting at the same moment made it
            pass
    what = "generated a" if made else "using the"
    notice = (
        f"{what} DEVELOPMENT media-link secret ({path}); production refuses to start without"
        " VIGIL_API_SECRET"
    )
    return LinkSecret(_read(path), notice)


def _create(path: Path) -> None:
    """A new random secret at ``path`` (mode 0600), never overwriting one: ``FileExistsError``
    if it is there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
    tmp = Path(name)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(GENERATED_BYTES) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)  # atomic; FileExistsError if another process made one first
    finally:
        tmp.unlink(missing_ok=True)


def _read(path: Path) -> bytes:
    """The generated secret at ``path``, refused if others may read it or it is not one."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretError(f"cannot read the media-link secret {path}: {exc}") from exc
    if mode & 0o077:
        raise SecretError(f"{path} may be read by others (mode {mode:o}): chmod 600 it")
    if len(text) != 2 * GENERATED_BYTES or any(c not in "0123456789abcdef" for c in text):
        raise SecretError(f"{path} is not a generated secret: delete it to make a new one")
    return text.encode()
