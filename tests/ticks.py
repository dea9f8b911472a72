"""Driving the reconcile loop tick by tick in the test process (no worker), for the tests of
every provider: ``tick_until(d, lambda d: d.state == "paused")``."""

from __future__ import annotations

import time

from releases.reconcile import tick


def tick_until(d, predicate, timeout=30.0, what="condition", each=None):
    """Tick ``d`` until ``predicate(d)`` holds (``each(d)`` is called after every tick), sleeping
    what the tick asked for, at most 0.1 s; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = tick.tick(d.pk)
        d.refresh_from_db()
        if each is not None:
            each(d)
        if predicate(d):
            return d
        time.sleep(min(0.1, result.wait or 0.02))
    raise AssertionError(f"timed out waiting for {what}: {d.state} {d.message}")
