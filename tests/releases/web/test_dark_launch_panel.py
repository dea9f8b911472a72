"""The deployment page's dark-launch panel, end to end on the real fleet agent and router: the
router mirrors every request to the canary slot (2.0, which answers 500 after 50 ms), compares
each copy's answer with the user's, the sampling round carries the comparison into the charts'
samples, and the deployment page shows the mismatch rate, the kinds of mismatch and the latency
of both sides. Users only ever get the stable slot's answers."""

from __future__ import annotations

import time
import uuid

import pytest
from django.test import Client

from integrations.local.process import start_agent
from integrations.local.traffic import Traffic
from releases.live import charts
from tests import factories
from tests.integrations.fleet_helpers import Control, fire, wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def own_keys(monkeypatch):
    monkeypatch.setattr(charts, "KEY_PREFIX", f"test-metrics-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def agent(tmp_path):
    with start_agent(log_path=tmp_path / "fleet.log") as agent:
        yield agent


def test_the_deployment_page_shows_the_dark_launch_comparison(
    agent, settings, target, admin, monkeypatch
):
    settings.FLEET_URL, settings.FLEET_TOKEN = agent.url, agent.token
    control = Control(agent)
    endpoint = control.create_target(target.key)
    control.ensure(target.key, "blue", "1.0.0", 1)
    control.ensure(target.key, "green", "2.0.0", 1, {"error_rate": 1.0, "latency_ms": 50})
    control.wait_ready(target.key, "blue", 1)
    control.wait_ready(target.key, "green", 1)
    control.set_routing(
        target.key,
        {"blue": 100, "green": 0},
        stable_slot="blue",
        canary_slot="green",
        mirror_routes=[{"name": "all", "percentage": 100, "match": []}],
    )
    deployment = factories.make_deployment(target, "1.0.0")  # active: sampled every round
    monkeypatch.setattr(charts, "publish_metrics", lambda *args: None)
    store = charts.Store()
    with Traffic(endpoint, rate=50, threads=2):
        assert charts.sample_all(store=store) == 0  # the baseline reading
        time.sleep(1.5)
        assert charts.sample_all(store=store) == 1
    users = fire(endpoint + "/", 10)
    assert {(a.status, a.version) for a in users} == {(200, "1.0.0")}
    [sample] = store.since(target.pk)
    dark = sample["dark_launch"]
    assert dark["compared"] > 20 and dark["status_mismatches"] == dark["compared"]
    assert dark["mismatch_rate"] == 1.0 and dark["latency_ms"]["mirror_p50"] >= 50
    wait_until(lambda: charts.latest(target.pk) is not None, what="a stored sample")
    client = Client()
    client.force_login(admin)
    html = client.get(f"/deployments/{deployment.pk}/").content.decode()
    assert "data-dark-launch" in html and "data-dark-launch hidden" not in html
    assert 'data-dl="mismatch_rate">100%' in html
    assert "status · GET /" in html and "stable 200 · canary 500" in html
    control.close()
