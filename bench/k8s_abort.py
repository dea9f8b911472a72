"""The kubernetes provider through the real stack, against a loopback fake of the Kubernetes API.

    .venv/bin/python bench/k8s_abort.py [--runs 20]

No kube-apiserver can run here, so the worker's official client talks over real HTTP to
tests/integrations/kubernetes/fake_api.py (here; it records every write with its time). Starts
the stack (bench/harness.py: web, Celery worker, beat) with KUBERNETES_KUBECONFIG naming the fake,
ships 1.0.0 to a gateway-api target, then N times: a canary to 50% held at a pause, aborted
through the REST API. Prints:

- abort latency: the abort API call sent -> the fake received the HTTPRoute write that puts
  100% on the stable slot (p50/p99; measured from the call's start, since the worker's write
  often lands before the web process's answer does), and the API call's own duration;
- API calls per tick, from the Target's own counter over the calls one tick makes when nothing
  has to change (status, ensure both slots, routing, status), and per canary run;
- that every call is by name or label-selected (no namespace-wide list).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import percentile, stack  # noqa: E402
from tests.integrations.kubernetes.conftest import http_route, target_config  # noqa: E402
from tests.integrations.kubernetes.fake_api import FakeCluster, kubeconfig  # noqa: E402

ROUTE_PATH = "/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/api"


def stable_at_100(body: dict | None) -> bool:
    rules = ((body or {}).get("spec") or {}).get("rules") or []
    if not rules:
        return False
    refs = rules[-1].get("backendRefs") or []
    return len(refs) > 1 and max(r.get("weight", 0) for r in refs) == 100 and len(rules) == 1


def wait_state(api, deployment_id: int, states: set[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = api("GET", f"/deployments/{deployment_id}")
        if d["state"] in states:
            return d
        time.sleep(0.02)
    raise TimeoutError(f"deployment {deployment_id} never reached {states}")


def per_tick_calls(path: str) -> dict[str, int]:
    """API calls of the Target methods one tick makes when nothing has to change."""
    from integrations.base import ReleaseRef, Routing
    from integrations.kubernetes.target import KubernetesTarget

    target = KubernetesTarget(
        "api.prod", target_config(cluster={"context": "prod"}), kubeconfig=path
    )
    one, two = ReleaseRef("1.0.0", {"image": "r/api:1"}), ReleaseRef("2.0.0", {"image": "r/api:2"})
    routing = Routing({"blue": 50, "green": 50}, stable_slot="blue", canary_slot="green")
    target.ensure_slot("blue", one, 2)
    target.ensure_slot("green", two, 2)
    target.set_routing(routing)
    counts = {}
    for name, call in (
        ("status", target.status),
        ("ensure_slot (unchanged)", lambda: target.ensure_slot("blue", one, 2)),
        ("set_routing (unchanged)", lambda: target.set_routing(routing)),
    ):
        before = target.cluster.calls
        call()
        counts[name] = target.cluster.calls - before
    counts["a steady tick (status, 2 slots, routing, status)"] = (
        2 * counts["status"]
        + 2 * counts["ensure_slot (unchanged)"]
        + counts["set_routing (unchanged)"]
    )
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    fake = FakeCluster(ready_after=0.1).start()
    fake.put(http_route())
    path = kubeconfig(Path(tempfile.mkdtemp()) / "kubeconfig", {"prod": fake})
    os.environ["KUBERNETES_KUBECONFIG"] = path
    latencies, calls, calls_per_run = [], [], []
    with stack("kubernetes") as api:
        api("POST", "/services", {"slug": "api", "name": "API"})
        api("POST", "/environments", {"slug": "prod", "name": "Prod", "order": 1})
        config = target_config(cluster={"context": "prod"})
        api("PUT", "/services/api/targets/prod", {"provider": "kubernetes", "config": config})
        versions = ["1.0.0"] + [f"2.0.{i}" for i in range(args.runs)]
        for version in versions:
            api(
                "POST",
                "/services/api/releases",
                {"version": version, "artifact": {"image": f"registry.example.com/api:{version}"}},
            )
        first = api.deploy("api", "prod", "1.0.0", {"kind": "recreate", "replicas": 2})
        wait_state(api, first["id"], {"succeeded"})
        canary = {
            "kind": "canary",
            "stable_replicas": 2,
            "steps": [{"set_weight": 50}, {"pause": {}}],
        }
        for version in versions[1:]:
            before = len(fake.requests)
            d = api.deploy("api", "prod", version, canary)
            wait_state(api, d["id"], {"paused"})
            sent = time.time()
            api("POST", f"/deployments/{d['id']}/abort", {"reason": "bench"})
            returned = time.time()
            wait_state(api, d["id"], {"aborted"})
            landed = next(
                t
                for t, method, p, body in fake.writes
                if t >= sent and method == "PUT" and p == ROUTE_PATH and stable_at_100(body)
            )
            latencies.append(landed - sent)
            calls.append(returned - sent)
            calls_per_run.append(len(fake.requests) - before)
    unselected = [
        (m, p, q)
        for m, p, q in fake.requests
        if m == "GET"
        and p.endswith(("/deployments", "/pods", "/services", "/ingresses"))
        and "labelSelector=" not in q
    ]
    ticks = per_tick_calls(path)
    fake.stop()
    ms = [1000 * x for x in latencies]
    print("abort latencies (ms, in run order):", " ".join(f"{x:.0f}" for x in ms))
    api_ms = [1000 * x for x in calls]
    print(
        f"the abort API call itself: p50 {percentile(api_ms, 0.5):.1f} ms, "
        f"p99 {percentile(api_ms, 0.99):.1f} ms"
    )
    print(
        f"abort API call sent -> 100% stable HTTPRoute written, {len(ms)} runs: "
        f"p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
        f"max {max(ms):.1f} ms"
    )
    print(
        f"API calls per canary run (deploy, 50%, pause, abort): "
        f"p50 {percentile(calls_per_run, 0.5):.0f}, max {max(calls_per_run)}"
    )
    for name, count in ticks.items():
        print(f"API calls: {name}: {count}")
    print(f"namespace-wide (unselected) lists: {len(unselected)} of {len(fake.requests)} calls")


if __name__ == "__main__":
    main()
