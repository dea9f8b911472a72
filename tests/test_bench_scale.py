"""``bench/scale.py --quick`` keeps working: canaries with analysis on a few local targets at once
with real fleet, worker, beat and web processes, then live dashboards through ``bench/ws.py``.
It needs a Redis server (REDIS_URL) or starts its own; nothing is timed here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(900)  # the bench's own bound; ~60 s on an idle machine, minutes under load
def test_bench_scale_quick_runs_every_rollout_to_success_and_reports_its_figures():
    result = subprocess.run(
        [sys.executable, "bench/scale.py", "--quick", "--dashboards", "20", "--timeout", "300"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "5 canaries with analysis, 2 worker processes" in out
    # on failure, say which rollouts did not succeed and why (the bench prints each one's reason
    # and its analysis verdicts), not the whole output cut in the middle
    why = "\n".join(
        line for line in out.splitlines() if line.startswith(("  all ", "  NOT", "  #", "    "))
    )
    assert "outcomes {'succeeded': 5}" in out and "NOT FINISHED" not in out, why
    assert "tick lag (due -> started) over" in out  # the workers log their lag
    assert "a tick took (wall)" in out  # and what each tick took
    assert "rollouts per minute" in out
    for role in ("worker (celery", "web (uvicorn", "fleet agent"):
        assert role in out
    assert "event -> dashboard, 20 dashboards" in out
    assert "messages lost: 0 of" in out
