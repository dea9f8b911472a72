"""A real Prometheus process for the tests, scraping loopback targets every second."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from integrations.local.ports import free_port


@contextmanager
def run_prometheus(address: str, token: str | None = None) -> Iterator[str]:
    """Prometheus scraping ``address`` (``host:port``, ``/metrics``) every second, with a bearer
    ``token`` if given; yields its URL. Skips the test when the binary is absent."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip(
            "the prometheus binary is absent: `apt-get install -y prometheus` (.ci/run does)"
        )
    port = free_port()
    auth = f"    authorization: {{credentials: {token}}}\n" if token else ""
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: fleet\n"
            "    scrape_interval: 1s\n"
            f"{auth}"
            f"    static_configs: [{{targets: ['{address}']}}]\n"
        )
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder}/data",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(Path(folder) / "prometheus.log", "wb"),  # noqa: SIM115
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            else:
                raise AssertionError("Prometheus did not become ready")
            yield url
        finally:
            process.terminate()
            process.wait(10)
