"""The live charts of a kubernetes target, through the same sampling round as the local fleet's
(``releases.live.charts.sample_all``): its counters come from a real Prometheus process, which
scrapes a loopback exporter standing in for Istio's sidecars (no cluster or mesh runs here): the
exporter serves ``istio_requests_total`` and ``istio_request_duration_milliseconds_bucket`` for
the workloads ``api-blue`` / ``api-green``, with counts the test sets. (The aws-ecs target's
charts from CloudWatch: tests/integrations/aws/test_cloudwatch_charts.py.)"""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from integrations.kubernetes.metrics import KubernetesMetrics
from releases.live import charts
from tests import factories
from tests.integrations.fleet_helpers import wait_until
from tests.integrations.kubernetes.conftest import target_config
from tests.prometheus import run_prometheus

pytestmark = pytest.mark.django_db
BOUNDS = ("5", "10", "50", "100", "+Inf")


@pytest.fixture(autouse=True)
def own_keys(monkeypatch):
    monkeypatch.setattr(charts, "KEY_PREFIX", f"test-metrics-{uuid.uuid4().hex[:10]}")
    monkeypatch.setattr(charts, "publish_metrics", lambda *args: None)


class Exporter:
    """Istio's standard metrics as a sidecar would expose them, with the counts the test sets."""

    def __init__(self):
        self.state = {}  # workload -> (ok, errors, {bound: cumulative})
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = exporter.text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_port}"

    def text(self) -> str:
        lines = []
        for workload, (ok, errors, buckets) in sorted(self.state.items()):
            where = (
                f'reporter="destination",destination_workload_namespace="shop",'
                f'destination_workload="{workload}"'
            )
            lines.append(f'istio_requests_total{{{where},response_code="200"}} {ok}')
            lines.append(f'istio_requests_total{{{where},response_code="503"}} {errors}')
            for bound in BOUNDS:
                lines.append(
                    f'istio_request_duration_milliseconds_bucket{{{where},le="{bound}"}} '
                    f"{buckets[bound]}"
                )
        return "\n".join(lines) + "\n"


def scraped(prometheus: str, total: int) -> bool:
    answer = httpx.get(
        f"{prometheus}/api/v1/query", params={"query": "sum(istio_requests_total)"}, timeout=2
    ).json()
    result = answer["data"]["result"]
    return bool(result) and float(result[0]["value"][1]) == total


def test_a_kubernetes_target_with_prometheus_feeds_the_live_charts(settings):
    exporter = Exporter()
    exporter.state = {
        "api-blue": (1000, 0, dict.fromkeys(BOUNDS, 1000)),
        "api-green": (100, 0, dict.fromkeys(BOUNDS, 100)),
        "other-blue": (5, 5, dict.fromkeys(BOUNDS, 10)),  # another target's workload
    }
    with run_prometheus(exporter.address) as prometheus:
        config = target_config({"kind": "istio", "virtual_service": "api"})
        target = factories.make_target(
            provider="kubernetes", config={**config, "prometheus_url": prometheus}
        )
        factories.make_deployment(target, "1.0.0")
        wait_until(lambda: scraped(prometheus, 1110), timeout=20, what="the first scrape")
        store = charts.Store()
        assert charts.sample_all(store=store) == 0  # the first reading is the baseline
        # in the next interval: blue answers 200 requests, 20 with 503, all under 10 ms;
        # green 100, half of them 503, all between 50 and 100 ms
        blue = {"5": 1000, "10": 1200, "50": 1200, "100": 1200, "+Inf": 1200}
        green = {"5": 100, "10": 100, "50": 100, "100": 200, "+Inf": 200}
        exporter.state["api-blue"] = (1180, 20, blue)
        exporter.state["api-green"] = (150, 50, green)
        wait_until(lambda: scraped(prometheus, 1410), timeout=20, what="the second scrape")
        assert charts.sample_all(store=store) == 1
    exporter.server.shutdown()
    [sample] = store.since(target.pk)
    assert set(sample["slots"]) == {"blue", "green"}
    b, g = sample["slots"]["blue"], sample["slots"]["green"]
    assert (b["requests"], b["errors"], b["error_rate"]) == (200, 20, 0.1)
    assert (g["requests"], g["errors"], g["error_rate"]) == (100, 50, 0.5)
    assert b["p95_ms"] == pytest.approx(9.75)  # within (5, 10], as histogram_quantile does
    assert g["p95_ms"] == pytest.approx(97.5)
    assert b["rps"] > 0


def test_kubernetes_targets_without_standard_metrics_or_prometheus_have_no_charts():
    configs = {
        "a": target_config({"kind": "gateway-api", "route": "api"}, prometheus_url="http://x"),
        "b": target_config({"kind": "istio", "virtual_service": "api"}),
    }
    assert KubernetesMetrics.read_counters(["a", "b"], configs=configs, prometheus_url="") == {}
