"""When each API token was last used, written behind the requests that use it."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from sqlalchemy import update

from catalog.models import ApiToken
from catalog.repository import Catalog

logger = logging.getLogger(__name__)


class UseStamps:
    """Each token's ``last_used_at``, written behind the requests that use it.

    A request must not wait for it: the stamp is a write, and the first request of every
    token (fifty devices and twenty reviewers starting at once) queued behind every other
    writer for its turn at SQLite's write lock, seconds under load, for a field no decision
    reads. ``note`` keeps the newest time per token; one thread at a time writes what is kept,
    all of it in one transaction, and ends when nothing is left. A crash loses at most the
    stamps not yet written (under a minute's worth: ``_active`` stamps once a minute)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._pending: dict[int, datetime] = {}
        self._lock = threading.Lock()
        self._writing = False

    def note(self, token_id: int, at: datetime) -> None:
        with self._lock:
            self._pending[token_id] = at
            if self._writing:
                return
            self._writing = True
        threading.Thread(target=self._write_all, name="token-use", daemon=True).start()

    def _write_all(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending, {}
                if not batch:
                    self._writing = False
                    return
            try:
                with self.catalog.session() as session:
                    for token_id, at in batch.items():
                        session.execute(
                            update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=at)
                        )
            except Exception:  # a stamp only: the next use stamps it again
                logger.exception("tokens' last use not written")

    def flush(self) -> None:
        """Wait until every stamp noted so far is written (tests, shutdown)."""
        while True:
            with self._lock:
                if not self._writing:
                    return
            time.sleep(0.01)
