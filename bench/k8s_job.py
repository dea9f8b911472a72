"""A job metric's measurement on a kubernetes target: the runner against a loopback fake of the
Kubernetes API (tests/integrations/kubernetes/fake_api.py: no kube-apiserver can run here),
through the official client over real HTTP.

    .venv/bin/python bench/k8s_job.py [--runs 20] [--run-time 0.5]

The fake's Job controller finishes a Job ``--run-time`` seconds after its creation. Prints, per
measurement: the time beyond the Job's own run time (p50/p99: the polling and the create /
delete calls; the first one apart: it imports the client and loads the kubeconfig), the API
calls it made, and that no Job is left behind.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "switchyard.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--run-time", type=float, default=0.5)
    parser.add_argument("--poll", type=float, default=None, help="default: the runner's (0.5 s)")
    options = parser.parse_args()

    import django
    from django.conf import settings

    django.setup()
    from bench.harness import percentile
    from integrations.base import Arm, MetricQuery
    from integrations.metrics import build_metrics
    from tests.integrations.kubernetes.conftest import target_config
    from tests.integrations.kubernetes.fake_api import FakeCluster, kubeconfig

    fake = FakeCluster(ready_after=options.run_time).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings.KUBERNETES_KUBECONFIG = kubeconfig(Path(tmp) / "kubeconfig", {"dev": fake})
            source = build_metrics(
                "job",
                runner="kubernetes",
                cluster=target_config(),
                image="reg/smoke:1",
                poll=options.poll,
            )
            query = MetricQuery("true", baseline=Arm("blue"), canary=Arm("green"), target="api")
            overhead, calls = [], []
            for _ in range(options.runs):
                before, start = len(fake.requests), time.monotonic()
                assert source.fetch(query, {}, 0, 1)["canary"]["values"] == [1.0]
                overhead.append(time.monotonic() - start - options.run_time)
                calls.append(len(fake.requests) - before)
            left = fake.list("batch", "jobs")
    finally:
        fake.stop()
    print(f"job measurements: {options.runs}, each Job running {options.run_time:g}s")
    first, rest = overhead[0], overhead[1:] or overhead
    print(f"  time beyond the Job's run, first (imports the client...): {first * 1000:.0f} ms")
    print(
        f"  time beyond the Job's run, the others: p50 {percentile(rest, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(rest, 0.99) * 1000:.0f} ms"
    )
    print(f"  API calls per measurement: min {min(calls)}, max {max(calls)}")
    print(f"  Jobs left behind: {len(left)}")


if __name__ == "__main__":
    main()
