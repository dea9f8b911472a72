"""Helpers shared by the test suites that start real processes (tests/e2e, tests/browser)."""

from __future__ import annotations

import os
import time

from django.db import connection


def child_database_url() -> str:
    """This test session's database as a DATABASE_URL for the processes it starts."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{os.path.abspath(db['NAME'])}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    host = db["HOST"] or "127.0.0.1"
    port = db["PORT"] or "5432"
    return f"postgresql://{auth}@{host}:{port}/{db['NAME']}"


def wait_for(predicate, supervisor, log_dir, *, timeout=60.0, interval=0.1, what="condition"):
    """Poll ``predicate`` until it is truthy (and return its value), failing at once if one of
    ``supervisor``'s processes has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        dead = supervisor.check()
        assert not dead, f"{dead} exited: see {log_dir}"
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
