"""``bench/api.py --quick`` keeps working: it seeds a small history by COPY, starts the production
web server (several uvicorn processes; or gunicorn's threaded workers with ``--server wsgi``, the
comparison docs/serving.md reports), sends an open-loop mix of the four requests and prints
its figures. Real Postgres and Redis (it needs both); nothing is timed here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres")
    or not os.environ.get("REDIS_URL"),
    reason="bench/api.py runs on Postgres and a Redis server (DATABASE_URL, REDIS_URL)",
)


@pytest.mark.parametrize("server", ["asgi", "wsgi"])
def test_bench_api_quick_runs_and_reports_every_endpoint_without_errors(server):
    result = subprocess.run(
        [sys.executable, "bench/api.py", "--quick", "--web-workers", "2", "--server", server],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "seeded 20 services x 4 environments, 2000 deployments, 20000 events" in out
    assert "EXPLAIN" not in out and "Index" in out  # the plans are printed
    for endpoint in (
        "GET /deployments/{id}",
        "GET /deployments?service=",
        "POST /services/{slug}/releases",
        "POST /deployments",
    ):
        row = re.search(
            re.escape(endpoint) + r"\s+(\d+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+(\d+)\s+([\d.]+)", out
        )
        assert row, f"no figures for {endpoint}:\n{out[-2000:]}"
        assert int(row.group(1)) > 0 and int(row.group(2)) == 0  # requests answered, no errors
        assert float(row.group(3)) >= 1  # queries were counted server-side
    assert "errors: 0" in out
