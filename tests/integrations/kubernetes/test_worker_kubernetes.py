"""A canary on a kubernetes target carried out by a real Celery worker process, against a
loopback fake of the Kubernetes API (fake_api.py here: no kube-apiserver can run on
these machines) that the worker's official client reaches over real HTTP through the kubeconfig
named in its settings (KUBERNETES_KUBECONFIG). Promote and abort are recorded by this process and
carried out by the worker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings

from releases import actions
from releases.models import Deployment, State
from switchyard import processes
from tests import factories
from tests.integrations.kubernetes.conftest import target_config
from tests.stack import child_database_url, wait_for

pytestmark = pytest.mark.e2e
LOG_DIR = Path(settings.BASE_DIR) / "test-output" / "e2e-kubernetes"
ROUTE = "gateway.networking.k8s.io", "httproutes", "api"
ROUTE_PATH = "/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/api"


@pytest.fixture
def worker(transactional_db, settings, cluster, kubeconfig_path):
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    settings.KUBERNETES_KUBECONFIG = kubeconfig_path
    env = dict(os.environ)
    env.update(
        DATABASE_URL=child_database_url(),
        REDIS_URL=settings.REDIS_URL,
        SECRET_KEY=settings.SECRET_KEY,
        KUBERNETES_KUBECONFIG=kubeconfig_path,
    )
    supervisor = processes.Supervisor(env=env, log_dir=LOG_DIR)
    supervisor.start("worker", processes.worker_command(concurrency=2))
    try:
        yield supervisor
    finally:
        supervisor.stop()


def state_is(d, *states):
    def check():
        d.refresh_from_db()
        return d.state in states

    return check


def deploy(target, version, spec):
    factories.make_release(
        target.service, version, artifact={"image": f"registry.example.com/api:{version}"}
    )
    d, _ = actions.start_deployment(
        factories.api_actor(),
        service=target.service,
        environment=target.environment,
        version=version,
        strategy=spec,
    )
    return d


def test_a_worker_runs_a_canary_on_the_cluster_and_an_abort_routes_back_first(worker, cluster):
    target = factories.make_target(provider="kubernetes", config=target_config())
    first = deploy(target, "1.0.0", {"kind": "recreate", "replicas": 2})
    wait_for(state_is(first, State.SUCCEEDED), worker, LOG_DIR, what="1.0.0 live")
    spec = {
        "kind": "canary",
        "steps": [{"set_weight": 25}, {"pause": {}}],
        "stable_replicas": 2,
        "route": {"header": "X-Canary"},
    }
    d = deploy(target, "2.0.0", spec)
    wait_for(state_is(d, State.PAUSED), worker, LOG_DIR, what="the pause")
    stable, canary = f"api-{d.stable_slot}", f"api-{d.canary_slot}"
    rules = cluster.get(*ROUTE)["spec"]["rules"]
    assert {r["name"]: r["weight"] for r in rules[-1]["backendRefs"]} == {stable: 75, canary: 25}
    assert rules[0]["matches"][0]["headers"][0]["value"] == "always"

    before = len(cluster.writes)
    actions.abort(factories.api_actor(), d.pk, reason="looks wrong")
    wait_for(state_is(d, State.ABORTED), worker, LOG_DIR, what="the abort")
    (method, path, body), *_ = [(m, p, b) for _, m, p, b in cluster.writes[before:]]
    assert (method, path) == ("PUT", ROUTE_PATH)  # the first write after the abort
    assert {r["name"]: r["weight"] for r in body["spec"]["rules"][-1]["backendRefs"]} == {
        stable: 100,
        canary: 0,
    }
    assert Deployment.objects.get(pk=d.pk).target.stable_release.version == "1.0.0"
