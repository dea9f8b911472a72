"""Evaluation counts per flag and variant, from the two ways they arrive (an Unleash SDK's
``/api/client/metrics`` report and the OFREP evaluations served here): on ``/metrics`` as
Prometheus counters (read back with ``prometheus_client``'s own parser, and scraped by a real
Prometheus from a live server), and as the flag page's evaluation chart."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from flags import actions, sdk
from flags.web import evaluation_chart
from tests import factories
from tests.flags.conftest import make_flag, url_of
from tests.prometheus import run_prometheus

VARIANTS = [
    {"name": "blue", "weight": 500, "weightType": "variable", "stickiness": "default"},
    {"name": "green", "weight": 500, "weightType": "variable", "stickiness": "default"},
]


def post(client, path, body, token):
    return client.post(
        path, json.dumps(body), content_type="application/json", headers={"Authorization": token}
    )


def samples(text: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def report(client, token, toggles, stop=None):
    stop = stop or timezone.now()
    bucket = {"start": (stop - timedelta(seconds=10)).isoformat(), "stop": stop.isoformat()}
    body = {"appName": "shop", "instanceId": "i-1", "bucket": {**bucket, "toggles": toggles}}
    assert post(client, "/api/client/metrics", body, token).status_code == 202


def evaluate_ofrep(client, token, key, n):
    for i in range(n):
        answer = post(
            client, f"/ofrep/v1/evaluate/flags/{key}", {"context": {"targetingKey": f"u{i}"}}, token
        )
        assert answer.status_code == 200
    sdk.flush_if_due(force=True)


@pytest.fixture
def seeded(actor, prod, sdk_token):
    sdk.flush_if_due(force=True)
    make_flag(actor, prod, "checkout", kind="string", default_value="red", variants=VARIANTS)
    make_flag(actor, prod, "search")
    client = Client()
    report(
        client, sdk_token, {"checkout": {"yes": 7, "no": 3, "variants": {"blue": 4, "green": 3}}}
    )
    report(client, sdk_token, {"search": {"yes": 5, "no": 0}})
    evaluate_ofrep(client, sdk_token, "checkout", 20)
    return client


@pytest.mark.django_db
def test_metrics_count_evaluations_per_flag_and_variant(seeded, actor, prod):
    got = samples(seeded.get("/metrics").content.decode())

    def n(name, flag, **labels):
        return got[(name, tuple(sorted({"flag": flag, "environment": "prod", **labels}.items())))]

    assert n("switchyard_flag_evaluations_total", "checkout", enabled="true") == 27
    assert n("switchyard_flag_evaluations_total", "checkout", enabled="false") == 3
    blue = n("switchyard_flag_variant_evaluations_total", "checkout", variant="blue")
    green = n("switchyard_flag_variant_evaluations_total", "checkout", variant="green")
    assert blue + green == 27 and blue >= 4 and green >= 3
    assert n("switchyard_flag_evaluations_total", "search", enabled="true") == 5
    assert n("switchyard_flag_serving", "search") == 1
    actions.kill(actor, actions.flag_by_key("search"), prod, "test")
    got = samples(seeded.get("/metrics").content.decode())
    assert n("switchyard_flag_serving", "search") == 0
    assert n("switchyard_flag_killed", "search") == 1
    # releases' metrics are still there, in the same document
    assert "# TYPE switchyard_deployments_total counter" in seeded.get("/metrics").content.decode()


@pytest.mark.django_db
def test_pruning_old_minutes_leaves_the_counters_where_they_were(seeded, sdk_token):
    """/metrics reads running totals, so deleting per-minute rows past their retention (which
    keeps the table, and the scrape, from growing with the flag's age) moves no counter back."""
    from flags.models import EvaluationCount

    before = samples(seeded.get("/metrics").content.decode())
    assert EvaluationCount.objects.exists()
    later = timezone.now() + sdk.MINUTES_KEPT + timedelta(minutes=2)
    assert sdk.prune_counts(now=later) > 0
    assert not EvaluationCount.objects.exists()
    flag_samples = {k: v for k, v in before.items() if k[0].startswith("switchyard_flag_")}
    after = samples(seeded.get("/metrics").content.decode())
    assert flag_samples and {k: after[k] for k in flag_samples} == flag_samples
    # and counting goes on from there
    report(seeded, sdk_token, {"search": {"yes": 2, "no": 1}})
    sdk.flush_if_due(force=True)
    got = samples(seeded.get("/metrics").content.decode())
    key = (
        "switchyard_flag_evaluations_total",
        (("enabled", "true"), ("environment", "prod"), ("flag", "search")),
    )
    assert got[key] == before[key] + 2


@pytest.mark.django_db
def test_the_metrics_token_covers_the_flags_too(seeded, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_METRICS_TOKEN", "s3cret")
    refused = seeded.get("/metrics")
    assert refused.status_code == 401 and b"switchyard_flag" not in refused.content
    ok = seeded.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert b"switchyard_flag_evaluations_total" in ok.content


@pytest.mark.django_db
def test_the_chart_has_a_series_per_variant_per_minute(seeded, actor, prod, sdk_token):
    now = timezone.now()
    earlier = now - timedelta(minutes=5)
    report(seeded, sdk_token, {"search": {"yes": 2, "no": 1}}, stop=earlier)
    chart = evaluation_chart(actions.flag_by_key("search"), now - timedelta(hours=24), now)
    [env] = chart["environments"]
    series = {s["name"]: s for s in env["series"]}
    assert set(series) == {"on", "off"} and series["on"]["total"] == 7
    points = series["on"]["points"]
    assert [p[1] for p in points][0] == 2 and points[-1][1] == 5
    assert all(b[0] - a[0] == 60 for a, b in zip(points, points[1:], strict=False))
    assert sum(p[1] for p in points) == 7  # the minutes between are zeros
    chart = evaluation_chart(actions.flag_by_key("checkout"), now - timedelta(hours=24), now)
    names = [s["name"] for s in chart["environments"][0]["series"]]
    assert names == ["blue", "green", "off"]
    client = Client()
    client.force_login(factories.make_persona("viewer", prod))
    html = client.get("/flags/checkout/").content.decode()
    assert 'data-flag-chart="prod"' in html and 'id="flag-evaluations"' in html
    assert 'data-series="green"' in html


@pytest.mark.django_db(transaction=True)
def test_a_real_prometheus_scrapes_the_flag_counters(live_server, actor, prod, sdk_token):
    """A real Prometheus scraping the live server's /metrics once a second."""
    make_flag(actor, prod, "search")
    sdk.flush_if_due(force=True)
    base = url_of(live_server)
    stop = timezone.now().isoformat()
    body = {
        "appName": "shop",
        "bucket": {"start": stop, "stop": stop, "toggles": {"search": {"yes": 9, "no": 1}}},
    }
    answer = httpx.post(
        f"{base}/api/client/metrics", json=body, headers={"Authorization": sdk_token}
    )
    assert answer.status_code == 202
    with run_prometheus(base.removeprefix("http://")) as url:
        deadline = time.monotonic() + 60
        found = []
        while time.monotonic() < deadline and not found:
            query = 'switchyard_flag_evaluations_total{flag="search",enabled="true"}'
            found = httpx.get(f"{url}/api/v1/query", params={"query": query}).json()["data"][
                "result"
            ]
            time.sleep(0.5)
    assert found and float(found[0]["value"][1]) == 9
    assert found[0]["metric"]["environment"] == "prod"
