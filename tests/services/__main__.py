"""Run the test services by hand, for a debugging session or many pytest runs in a row
(``vigil services up`` starts them for development, S3 included, and returns):

    python -m tests.services up [DIR]   # start Kafka and PostgreSQL, print the variables that
                                        # point the fixtures at them, stay up until Ctrl-C
    python -m tests.services down [DIR] # stop the ones an `up` in DIR started

DIR defaults to .cache/services (git-ignored).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from interfaces.devservices.kafka import KafkaService
from interfaces.devservices.postgres import PostgresService
from tests.services.fixtures import DATABASE_ENV, KAFKA_ENV

ROOT = Path(__file__).resolve().parents[2]

USAGE = "usage: python -m tests.services up|down [DIR]"


def up(work: Path) -> int:
    work.mkdir(parents=True, exist_ok=True)
    pid_file = work / "up.pid"
    kafka = KafkaService(work / "kafka")
    postgres = PostgresService(work / "postgres")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        postgres.start()
        kafka.start()
        pid_file.write_text(f"{os.getpid()}\n")
        print(f"export {KAFKA_ENV}={kafka.bootstrap}")
        print(f"export {DATABASE_ENV}={postgres.url()}")
        print(f"# logs: {kafka.log} {postgres.log}; stop: Ctrl-C or `down`", file=sys.stderr)
        sys.stdout.flush()
        done.wait()
    finally:
        kafka.stop()
        postgres.destroy()
        pid_file.unlink(missing_ok=True)
    return 0


def down(work: Path) -> int:
    pid_file = work / "up.pid"
    if not pid_file.exists():
        print(f"nothing is up in {work}", file=sys.stderr)
        return 1
    os.kill(int(pid_file.read_text()), signal.SIGTERM)
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("up", "down") or len(argv) > 2:
        print(USAGE, file=sys.stderr)
        return 2
    work = Path(argv[1]) if len(argv) == 2 else ROOT / ".cache" / "services"
    return up(work.resolve()) if argv[0] == "up" else down(work.resolve())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
