"""Against a real cluster (kind, minikube or any), only when ``KUBECONFIG`` names one: the
provider runs two slots of a public image and switches a Service between them. Skipped
everywhere else (no cluster can run on the development machines).

    KUBECONFIG=~/.kube/config SWITCHYARD_LIVE_NAMESPACE=default \\
        .venv/bin/python -m pytest -m live tests/integrations/kubernetes/test_live_cluster.py

It creates ``sy-live-blue``/``sy-live-green`` Deployments and the ``sy-live`` and
``sy-live-preview`` Services in that namespace, and deletes them afterwards.
"""

from __future__ import annotations

import os
import time

import pytest

from integrations.base import ReleaseRef, Routing

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="KUBECONFIG names no cluster"),
]
NAMESPACE = os.environ.get("SWITCHYARD_LIVE_NAMESPACE", "default")
IMAGE = os.environ.get("SWITCHYARD_LIVE_IMAGE", "nginx:1.27-alpine")


@pytest.fixture
def live_target():
    from kubernetes import config as k8s_config

    from integrations.kubernetes.target import KubernetesTarget

    kubeconfig = os.environ["KUBECONFIG"]
    context = (
        os.environ.get("SWITCHYARD_LIVE_CONTEXT")
        or (k8s_config.list_kube_config_contexts(config_file=kubeconfig)[1]["name"])
    )
    template = {
        "spec": {"containers": [{"name": "app", "image": IMAGE, "ports": [{"containerPort": 80}]}]}
    }
    config = {
        "cluster": {"context": context},
        "namespace": NAMESPACE,
        "name": "sy-live",
        "template": {"manifest": template},
        "router": {"kind": "service-selector"},
        "target_port": 80,
    }
    target = KubernetesTarget("sy-live.test", config, kubeconfig=kubeconfig, timeout=10)
    yield target
    for name in ("sy-live-blue", "sy-live-green"):
        target.cluster.call(
            "delete",
            target.cluster.apps.delete_namespaced_deployment,
            name,
            NAMESPACE,
            missing_ok=True,
        )
    for name in ("sy-live", "sy-live-preview"):
        target.cluster.call(
            "delete",
            target.cluster.core.delete_namespaced_service,
            name,
            NAMESPACE,
            missing_ok=True,
        )


def wait_ready(target, slot, count, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = target.status().slots.get(slot)
        if status is not None and status.ready >= count:
            return status
        time.sleep(2)
    raise AssertionError(f"{slot} never had {count} ready pods")


def test_two_slots_and_a_selector_switch_on_a_real_cluster(live_target):
    live_target.ensure_slot("blue", ReleaseRef("1", {"image": IMAGE}), 1)
    live_target.ensure_slot("green", ReleaseRef("2", {"image": IMAGE, "env": {"V": "2"}}), 1)
    wait_ready(live_target, "blue", 1)
    wait_ready(live_target, "green", 1)
    live_target.set_routing(Routing({"blue": 100, "green": 0}, preview_slot="green"))
    assert live_target.status().weights == {"blue": 100, "green": 0}
    live_target.set_routing(Routing({"blue": 0, "green": 100}))
    assert live_target.status().weights == {"blue": 0, "green": 100}
    live_target.remove_slot("blue")
    assert live_target.status().slots["blue"].desired == 0


@pytest.mark.parametrize(("command", "passed"), [("exit 0", 1.0), ("exit 1", 0.0)])
def test_a_job_metric_runs_as_a_job_on_a_real_cluster(live_target, settings, command, passed):
    """A job metric's measurement as a real Job (``busybox``), deleted afterwards."""
    from integrations.base import Arm, MetricQuery
    from integrations.metrics import build_metrics

    settings.KUBERNETES_KUBECONFIG = os.environ["KUBECONFIG"]
    source = build_metrics(
        "job",
        runner="kubernetes",
        cluster=live_target.config,
        image=os.environ.get("SWITCHYARD_LIVE_JOB_IMAGE", "busybox:1.36"),
        timeout=120,
        poll=1.0,
    )
    query = MetricQuery(f"sh -c '{command}'", baseline=Arm("blue"), canary=Arm("green"), target="t")
    assert source.fetch(query, {}, 0, 1)["canary"]["values"] == [passed]
    jobs = live_target.cluster.call(
        "list Jobs",
        live_target.cluster.batch.list_namespaced_job,
        NAMESPACE,
        label_selector="app.kubernetes.io/managed-by=switchyard",
    )
    assert not [j for j in jobs["items"] if not j["metadata"].get("deletionTimestamp")]
