"""free_port keeps ports apart between processes: a port one Vigil process was handed stays
its own until it ends, even while nothing listens on it (a service stopped to be started again
on the same port). Real processes, a real claims file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from interfaces.devservices import base

HOLDER = (
    "import sys\n"
    "from interfaces.devservices.base import free_port\n"
    "print(free_port(), flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.fixture
def held() -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """Another process that was handed a port and still runs (it binds nothing)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    yield port, proc
    proc.kill()
    proc.wait()


def test_a_port_another_process_was_handed_is_not_claimable_until_it_ends(
    held: tuple[int, subprocess.Popen[str]],
) -> None:
    port, proc = held
    assert not base.port_open(port)  # nothing listens on it: only the claim keeps it
    assert base._claim(port) is False
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0
    assert base._claim(port) is True  # the kernel dropped the claim with its process


class _Picks:
    def __init__(self, ports: list[int]) -> None:
        self.ports = ports

    def randrange(self, low: int, high: int) -> int:
        return self.ports.pop(0)


def test_free_port_passes_over_a_port_another_process_holds(
    held: tuple[int, subprocess.Popen[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = held
    other = next(p for p in range(port + 1, port + 500) if base._takeable(p))  # claimed here
    monkeypatch.setattr(base, "_HANDED_OUT", set())
    monkeypatch.setattr(base.random, "SystemRandom", lambda: _Picks([port, other]))
    assert base.free_port() == other
