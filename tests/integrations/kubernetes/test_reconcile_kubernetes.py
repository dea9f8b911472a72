"""Every strategy through the reconcile loop (``releases.reconcile.tick.tick``, tick by tick in
this process) with the kubernetes provider, against loopback fakes of the Kubernetes API
(fake_api.py here: no kube-apiserver can run on these machines) that the official
client talks to over real HTTP: recreate, rolling in batches, blue-green by selector with its
preview, canary by HTTPRoute weights with header targeting, abort writing 100% stable first, an
image that never becomes ready, lost permissions mid-rollout, and two clusters from one control
plane."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from integrations.kubernetes.target import KubernetesTarget
from releases import actions
from releases.live.presenters import board_cells
from releases.models import State
from releases.reconcile import tick
from tests import factories
from tests.integrations.kubernetes.conftest import http_route, target_config
from tests.integrations.kubernetes.fake_api import FakeCluster, kubeconfig
from tests.ticks import tick_until

pytestmark = pytest.mark.django_db
ROUTE = "gateway.networking.k8s.io", "httproutes", "api"


@pytest.fixture
def k8s(cluster, kubeconfig_path, settings):
    settings.KUBERNETES_KUBECONFIG = kubeconfig_path
    return cluster


def kube_target(service="api", env="dev", **config):
    return factories.make_target(
        factories.make_service(service),
        factories.make_environment(env),
        provider="kubernetes",
        config=target_config(**config),
    )


def deploy(target, version, strategy, image=None):
    factories.make_release(
        target.service, version, artifact={"image": image or f"registry.example.com/api:{version}"}
    )
    d, _ = actions.start_deployment(
        factories.api_actor(),
        service=target.service,
        environment=target.environment,
        version=version,
        strategy=strategy,
    )
    return d


def live(target, version="1.0.0", replicas=2):
    spec = {"kind": "recreate", "replicas": replicas}
    d = tick_until(deploy(target, version, spec), lambda d: d.state == State.SUCCEEDED)
    target.refresh_from_db()
    return d


def weights_of(cluster):
    rules = cluster.get(*ROUTE)["spec"]["rules"]
    return {r["name"]: r["weight"] for r in rules[-1]["backendRefs"]}


def test_recreate_runs_the_release_as_a_slot_deployment(k8s):
    target = kube_target()
    d = live(target)
    dep = k8s.get("apps", "deployments", f"api-{d.canary_slot}")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.0.0")
    target.refresh_from_db()
    assert target.stable_release.version == "1.0.0"
    slot = target.observed[target.stable_slot]
    assert slot["ready"] == 2 and {i["state"] for i in slot["instances"]} == {"ready"}


def test_a_canary_walks_its_weights_on_the_http_route_and_targets_by_header(k8s):
    target = kube_target()
    live(target)
    spec = {
        "kind": "canary",
        "steps": [{"set_weight": 20}, {"pause": {}}, {"set_weight": 60}, {"pause": {}}],
        "stable_replicas": 2,
        "route": {"header": "X-Canary"},
    }
    d = deploy(target, "2.0.0", spec)
    d = tick_until(d, lambda d: d.state == State.PAUSED, what="the first pause")
    stable, canary = f"api-{d.stable_slot}", f"api-{d.canary_slot}"
    assert weights_of(k8s) == {stable: 80, canary: 20}
    always = k8s.get(*ROUTE)["spec"]["rules"][0]
    assert always["matches"][0]["headers"][0] == {
        "type": "Exact",
        "name": "X-Canary",
        "value": "always",
    }
    assert always["backendRefs"][0]["name"] == canary
    actions.promote(factories.api_actor(), d.pk)
    d = tick_until(d, lambda d: d.state == State.PAUSED and d.step_index == 3, what="step 4")
    assert weights_of(k8s) == {stable: 40, canary: 60}
    actions.promote(factories.api_actor(), d.pk)
    d = tick_until(d, lambda d: d.state == State.SUCCEEDED, what="success")
    assert weights_of(k8s)[canary] == 100
    target.refresh_from_db()
    assert target.stable_release.version == "2.0.0"


def test_an_abort_writes_100_percent_stable_before_anything_else(k8s):
    target = kube_target()
    live(target)
    spec = {"kind": "canary", "steps": [{"set_weight": 50}, {"pause": {}}], "stable_replicas": 2}
    d = tick_until(deploy(target, "2.0.0", spec), lambda d: d.state == State.PAUSED)
    actions.abort(factories.api_actor(), d.pk, reason="looks wrong")
    before = len(k8s.requests)
    tick.tick(d.pk)
    d.refresh_from_db()
    writes = [(m, p) for m, p, _ in k8s.calls(before) if m in ("PUT", "POST", "DELETE")]
    assert writes[0] == ("PUT", "/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/api")
    assert weights_of(k8s) == {f"api-{d.stable_slot}": 100, f"api-{d.canary_slot}": 0}
    assert d.state == State.ABORTED


@pytest.fixture
def preview_app():
    """Stands in for the preview Service's pods: answers the smoke check's GET /health."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_blue_green_previews_switches_the_selector_and_switches_back(k8s, preview_app):
    target = kube_target(router={"kind": "service-selector"}, preview_url=preview_app)
    live(target)
    spec = {
        "kind": "blue_green",
        "replicas": 2,
        "preview_replicas": 1,
        "smoke": [{"path": "/health", "status": 200}],
        "auto_promote": 0,
        "scale_down_delay": "30s",
    }
    d = deploy(target, "2.0.0", spec)
    seen_preview = []

    def watch(d):
        svc = k8s.get("", "services", "api-preview")
        if svc:
            seen_preview.append(svc["spec"]["selector"].get("switchyard.dev/slot"))

    d = tick_until(d, lambda d: d.weights.get("canary") == 100, what="the switch", each=watch)
    assert d.canary_slot in seen_preview  # the idle side was previewed before the switch
    assert d.checks["smoke"]["passed"] and d.checks["smoke"]["urls"] == [preview_app]
    selector = k8s.get("", "services", "api")["spec"]["selector"]
    assert selector["switchyard.dev/slot"] == d.canary_slot
    actions.rollback(factories.api_actor(), d.pk)
    d = tick_until(d, lambda d: d.state == State.ROLLED_BACK, what="the switch back")
    selector = k8s.get("", "services", "api")["spec"]["selector"]
    assert selector["switchyard.dev/slot"] == d.stable_slot


def test_rolling_moves_pods_in_batches(k8s):
    target = kube_target()
    live(target, replicas=3)
    spec = {"kind": "rolling", "replicas": 3, "batch_size": 1, "max_surge": 1, "max_unavailable": 0}
    d = deploy(target, "2.0.0", spec)
    sizes = []

    def watch(d):
        dep = k8s.get("apps", "deployments", f"api-{d.canary_slot}")
        if dep is not None:
            sizes.append(dep["spec"]["replicas"])

    d = tick_until(d, lambda d: d.state == State.SUCCEEDED, what="success", each=watch)
    grown = [s for i, s in enumerate(sizes) if i == 0 or s != sizes[i - 1]]
    assert grown == [1, 2, 3]  # one pod at a time
    old = k8s.get("apps", "deployments", f"api-{d.stable_slot}")
    # the done tick starts the previous release again behind a 0% route: the rollback window
    assert old["spec"]["replicas"] == 3 and d.window_until is not None


def test_an_image_that_never_becomes_ready_rolls_back_and_the_page_says_why(k8s, client, admin):
    target = kube_target()
    live(target)
    spec = {
        "kind": "canary",
        "steps": [{"set_weight": 20}, {"pause": {}}],
        "stable_replicas": 2,
        "progress_deadline": "1s",
    }
    d = deploy(target, "2.0.0", spec, image="registry.example.com/api:crashloop")
    d = tick_until(d, lambda d: d.state in (State.ROLLED_BACK, State.FAILED), what="a rollback")
    assert d.state == State.FAILED, d.message  # failed, and rolled back to the old release
    assert "progress deadline" in d.failure_reason
    assert "1 instance failing health checks" in d.failure_reason  # the crash-looping pod
    client.force_login(admin)
    page = client.get(reverse("deployment", args=[d.pk])).content.decode()
    assert '<span class="inst-reason">CrashLoopBackOff</span>' in page
    rules = k8s.get(*ROUTE)["spec"]["rules"]
    assert {r["name"]: r["weight"] for r in rules[-1]["backendRefs"]}.get(
        f"api-{d.canary_slot}", 0
    ) == 0


def test_lost_permissions_mid_rollout_fail_the_step_with_what_to_grant(k8s):
    target = kube_target()
    live(target)
    spec = {"kind": "canary", "steps": [{"set_weight": 20}, {"pause": {}}], "stable_replicas": 2}
    d = tick_until(deploy(target, "2.0.0", spec), lambda d: d.state == State.PAUSED)
    k8s.forbid("update", "httproutes")
    actions.promote(factories.api_actor(), d.pk)
    d = tick_until(d, lambda d: "forbidden (403)" in (d.message or ""), what="the refusal")
    assert 'cannot update resource "httproutes"' in d.message


def test_two_clusters_from_one_control_plane_and_the_board_says_which(settings, tmp_path):
    east = FakeCluster(ready_after=0.05).start()
    west = FakeCluster(ready_after=0.05).start()
    try:
        for fake in (east, west):
            fake.put(http_route())
        settings.KUBERNETES_KUBECONFIG = kubeconfig(
            tmp_path / "kubeconfig", {"east": east, "west": west}
        )
        a = kube_target("api", "staging", cluster={"context": "east"})
        b = kube_target("api", "prod", cluster={"context": "west"})
        live(a, "1.0.0")
        live(b, "0.9.0")
        assert {d["metadata"]["name"] for d in east.list("apps", "deployments")} == {
            f"api-{a.stable_slot}"
        }
        east_image = east.list("apps", "deployments")[0]["spec"]["template"]["spec"]
        west_image = west.list("apps", "deployments")[0]["spec"]["template"]["spec"]
        assert east_image["containers"][0]["image"].endswith(":1.0.0")
        assert west_image["containers"][0]["image"].endswith(":0.9.0")
        cells = {c["environment"]: c for c in board_cells()}
        assert cells["staging"]["runs_on"] == "east · shop/api · gateway-api"
        assert cells["prod"]["runs_on"] == "west · shop/api · gateway-api"
    finally:
        east.stop()
        west.stop()


ROUTER_OBJECTS = {
    "ingress-nginx": "/apis/networking.k8s.io/v1/namespaces/shop/ingresses/api-canary",
    "istio": "/apis/networking.istio.io/v1/namespaces/shop/virtualservices/api",
}


@pytest.mark.parametrize(
    "router",
    [{"kind": "ingress-nginx", "ingress": "api"}, {"kind": "istio", "virtual_service": "api"}],
    ids=lambda r: r["kind"],
)
def test_a_canary_on_each_weighted_router_and_its_abort(k8s, kubeconfig_path, router):
    target = kube_target(router=router)
    live(target)
    spec = {
        "kind": "canary",
        "steps": [{"set_weight": 30}, {"pause": {}}],
        "stable_replicas": 2,
        "route": {"header": "X-Canary", "cookie": "canary"},
    }
    d = tick_until(deploy(target, "2.0.0", spec), lambda d: d.state == State.PAUSED)
    provider = KubernetesTarget(target.key, target.config, kubeconfig=kubeconfig_path)
    status = provider.status()
    assert status.weights == {d.stable_slot: 70, d.canary_slot: 30}
    assert (status.routing.header, status.routing.cookie) == ("X-Canary", "canary")
    actions.abort(factories.api_actor(), d.pk)
    before = len(k8s.writes)
    tick.tick(d.pk)
    d.refresh_from_db()
    (method, path, _), *_ = [(m, p, b) for _, m, p, b in k8s.writes[before:]]
    assert (method, path) == ("PUT", ROUTER_OBJECTS[router["kind"]])
    assert provider.status().weights == {d.stable_slot: 100, d.canary_slot: 0}
    assert d.state == State.ABORTED


def test_header_and_mirror_route_steps_on_istio_through_the_loop(k8s):
    """Argo's setHeaderRoute / setMirrorRoute as canary steps on the istio router: the
    VirtualService gets the named routes while the step is in force, and loses them at the end."""
    target = kube_target(router={"kind": "istio", "virtual_service": "api"})
    live(target)
    spec = {
        "kind": "canary",
        "stable_replicas": 2,
        "steps": [
            {"set_weight": 10},
            {
                "set_header_route": {
                    "name": "beta",
                    "match": [{"header": "X-Beta", "value": {"exact": "yes"}}],
                }
            },
            {
                "set_mirror_route": {
                    "name": "dark",
                    "percentage": 20,
                    "match": [{"method": {"exact": "GET"}}],
                }
            },
            {"pause": {}},
        ],
    }
    d = tick_until(deploy(target, "2.0.0", spec), lambda d: d.state == State.PAUSED)
    http = k8s.get("networking.istio.io", "virtualservices", "api")["spec"]["http"]
    assert [r.get("name") for r in http] == ["beta", "dark", None]
    canary = {"host": "api", "subset": d.canary_slot}
    assert http[0]["route"] == [{"destination": canary}]
    assert http[1]["mirror"] == canary and http[1]["mirrorPercentage"] == {"value": 20.0}
    assert http[1]["route"] == http[2]["route"]  # the mirrored requests follow the weights
    assert {r["destination"]["subset"]: r["weight"] for r in http[2]["route"]} == {
        d.stable_slot: 90,
        d.canary_slot: 10,
    }
    actions.promote(factories.api_actor(), d.pk)
    tick_until(d, lambda d: d.state == State.SUCCEEDED, what="success")
    http = k8s.get("networking.istio.io", "virtualservices", "api")["spec"]["http"]
    assert [r.get("name") for r in http] == [None]


def test_a_mirror_step_is_refused_at_creation_on_a_router_that_cannot(k8s):
    from releases.errors import InvalidSpec

    target = kube_target(router={"kind": "ingress-nginx", "ingress": "api"})
    spec = {
        "kind": "canary",
        "steps": [{"set_mirror_route": {"name": "dark", "percentage": 5, "match": []}}],
    }
    with pytest.raises(InvalidSpec) as refused:
        deploy(target, "2.0.0", spec)
    assert refused.value.details["missing_capabilities"] == ["mirroring"]
