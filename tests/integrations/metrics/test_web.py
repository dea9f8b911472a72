"""The web metric provider against a loopback HTTP server speaking JSON (a stand-in for any status
endpoint an Argo ``web`` metric reads): per-arm URLs, JSONPath selection, and failures said as
transient or permanent."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from integrations.base import Arm, IntegrationError, MetricQuery
from integrations.metrics import build_metrics
from integrations.metrics.web import WebMetrics, observations

ANSWERS = {
    "blue": {"data": {"ok": True, "successRate": 0.999, "latencies": [10, 12]}},
    "green": {"data": {"ok": False, "successRate": "0.91", "latencies": [40, 41]}},
}


class Handler(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_GET(self):  # noqa: N802 -- http.server's name
        url = urlparse(self.path)
        Handler.seen.append(
            {"path": url.path, "query": parse_qs(url.query), "auth": self.headers["Authorization"]}
        )
        if url.path == "/status":
            slot = parse_qs(url.query)["slot"][0]
            self._answer(200, json.dumps(ANSWERS[slot]).encode())
        elif url.path == "/broken":
            self._answer(503, b'{"error": "down"}')
        elif url.path == "/secret":
            self._answer(401, b"{}")
        elif url.path == "/html":
            self._answer(200, b"<html>not json</html>")
        else:
            self._answer(404, b"{}")

    def _answer(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def query(path: str, **values) -> MetricQuery:
    return MetricQuery(
        path,
        baseline=Arm("blue", "1.0"),
        canary=Arm("green", "2.0"),
        target="api.dev",
        values={"target": "api.dev", **values},
    )


def test_each_arm_reads_its_own_url_and_the_path_selects_its_values(server):
    Handler.seen.clear()
    source = WebMetrics(address=server + "/status?slot={{slot}}&v={{version}}&s={{args.svc}}")

    got = source.fetch(query("{$.data.ok}", **{"args.svc": "a b&c"}), {}, 0.0, 10.0)

    assert got == {"baseline": {"values": [1.0]}, "canary": {"values": [0.0]}}
    assert [s["query"]["slot"] for s in Handler.seen] == [["blue"], ["green"]]
    assert Handler.seen[0]["query"]["s"] == ["a b&c"]  # URL-quoted: one value, not two
    source = WebMetrics(address=server + "/status?slot={{slot}}")
    rates = source.fetch(query("$.data.successRate"), {}, 0.0, 10.0)
    assert rates["canary"] == {"values": [0.91]}  # a numeric string is a number
    lists = source.fetch(query("$.data.latencies"), {}, 0.0, 10.0)
    assert lists["baseline"] == {"values": [10.0, 12.0]}
    nothing = source.fetch(query("$.data.absent"), {}, 0.0, 10.0)
    assert nothing == {"baseline": {"values": []}, "canary": {"values": []}}


def test_headers_come_from_the_settings_for_a_url_prefix(server, settings):
    settings.WEB_METRICS_HEADERS = {server + "/status": {"Authorization": "Bearer s3cret"}}
    Handler.seen.clear()
    source = build_metrics("web", address=server + "/status?slot={{slot}}")

    source.fetch(query("$.data.ok"), {}, 0.0, 1.0)

    assert {s["auth"] for s in Handler.seen} == {"Bearer s3cret"}


@pytest.mark.parametrize(
    ("path", "permanent", "words"),
    [
        ("/broken", False, "failed"),
        ("/secret", True, "refused the token"),
        ("/missing", True, "refused"),
        ("/html", False, "invalid JSON"),
    ],
)
def test_failures_say_whether_retrying_can_help(server, path, permanent, words):
    with pytest.raises(IntegrationError) as caught:
        WebMetrics(address=server + path).fetch(query("$.ok"), {}, 0.0, 1.0)
    assert caught.value.permanent is permanent
    assert words in caught.value.message


def test_a_server_that_is_not_there_is_transient():
    with pytest.raises(IntegrationError) as caught:
        WebMetrics(address="http://127.0.0.1:9/x", timeout=1.0).fetch(query("$.ok"), {}, 0, 1)
    assert caught.value.permanent is False


def test_a_selected_value_that_is_not_a_number_is_a_permanent_error():
    with pytest.raises(IntegrationError) as caught:
        observations({"data": {"ok": {"nested": 1}}}, "$.data.ok")
    assert caught.value.permanent and "not a number" in caught.value.message
    with pytest.raises(IntegrationError):
        observations({"status": "green"}, "$.status")
