"""A token's last use is stamped behind the request (``catalog.token_use``): the request never
waits for SQLite's write lock for it, and the stamp lands all the same."""

from __future__ import annotations

import threading
from pathlib import Path

from catalog.access import AccessService
from catalog.db import make_engine
from catalog.models import ApiToken
from catalog.repository import Catalog


def _service(tmp_path: Path) -> tuple[AccessService, str]:
    catalog = Catalog(make_engine(f"sqlite:///{tmp_path / 'c.sqlite3'}", busy_s=5))
    catalog.migrate()
    access = AccessService(catalog)
    access.add_principal("rev-1", "reviewer", display_name="R", actor="admin")
    return access, access.issue_token("rev-1", label="t", actor="admin").token


def _last_used(access: AccessService) -> list[object]:
    with access.catalog.session() as session:
        return [t.last_used_at for t in session.query(ApiToken)]


def test_a_tokens_use_is_stamped_without_the_request_writing(tmp_path: Path) -> None:
    access, token = _service(tmp_path)
    assert _last_used(access) == [None]
    # Another writer holds SQLite's write lock: the check answers anyway.
    writer = access.catalog.engine.connect()
    writer.exec_driver_sql("BEGIN IMMEDIATE")
    answered = threading.Event()

    def check() -> None:
        assert access.check_token(token).caller is not None
        answered.set()

    threading.Thread(target=check, daemon=True).start()
    try:
        assert answered.wait(3), "the token check waited for the write lock"
    finally:
        writer.exec_driver_sql("ROLLBACK")
        writer.close()
    access.uses.flush()
    (stamp,) = _last_used(access)
    assert stamp is not None
