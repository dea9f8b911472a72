"""Rollout plans gated by a canary analysis of the flag's cohorts: releases' analysis templates,
judged by the same judge as a deployment's canary, against a real Prometheus (the Debian
package on a loopback port) scraping a real exporter (``prometheus_client`` in this process)
that counts a service's requests per flag cohort. A failed analysis steps the plan back by
itself; a passing one moves it on."""

from __future__ import annotations

import time

import httpx
import pytest
from django.test import Client
from prometheus_client import CollectorRegistry, Counter, start_http_server

from flags import plans, state
from flags.models import PlanState
from integrations.local.ports import free_port
from releases.analysis.templates import save_template
from releases.models import AuditEvent
from tests import factories
from tests.flags.conftest import make_flag
from tests.prometheus import run_prometheus

pytestmark = pytest.mark.django_db

SELECTOR = 'flag="{{args.flag}}", cohort="{{slot}}"'
RATIO = (
    f'sum(shop_requests_total{{{SELECTOR}, code="500"}}) / sum(shop_requests_total{{{SELECTOR}}})'
)
# requests per cohort: (total, errors): "checkout" hurts the users it is on for, "search" not
TRAFFIC = {
    "checkout": {"off": (1000, 10), "on": (100, 40)},
    "search": {"off": (1000, 10), "on": (100, 1)},
}


@pytest.fixture(scope="module")
def prometheus():
    registry = CollectorRegistry()
    requests = Counter(
        "shop_requests", "Requests by flag cohort", ["flag", "cohort", "code"], registry=registry
    )
    for flag, cohorts in TRAFFIC.items():
        for cohort, (total, errors) in cohorts.items():
            requests.labels(flag, cohort, "200").inc(total - errors)
            requests.labels(flag, cohort, "500").inc(errors)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        with run_prometheus(f"127.0.0.1:{port}") as url:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                answer = httpx.get(f"{url}/api/v1/query", params={"query": "shop_requests_total"})
                if len(answer.json()["data"]["result"]) == 8:
                    break
                time.sleep(0.5)
            yield url
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def template(prometheus):
    save_template(
        "flag-errors",
        {
            "args": [{"name": "flag"}, {"name": "max", "value": "0.05"}],
            "metrics": [
                {
                    "name": "error-ratio",
                    "provider": "prometheus",
                    "address": prometheus,
                    "query": RATIO,
                    "test": "threshold",
                    "success_condition": "canary < {{args.max}}",
                    "failure_condition": "canary > 0.2",
                    "interval": "1s",
                    "count": 2,
                }
            ],
        },
    )
    return "flag-errors"


def steps(template):
    return [
        {"percent": 1},
        {"percent": 10, "gate": "analysis", "analysis": {"template": template}},
        {"percent": 100},
    ]


def served_rollout(env) -> str:
    feature = state.build(env.pk, 0).document["features"][0]
    return feature["strategies"][0]["parameters"]["rollout"] if feature["enabled"] else "off"


def tick_until_moved(plan, limit=30.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if plans.tick():
            plan.refresh_from_db()
            return plan
        time.sleep(0.5)
    raise AssertionError(f"the plan did not move: {plan.gate.get('reason')}")


def test_a_failed_analysis_steps_the_plan_back_by_itself(template, actor, prod):
    flag = make_flag(actor, prod, "checkout")
    plan = plans.promote(actor, plans.start(actor, flag, prod, steps(template)))
    assert served_rollout(prod) == "10"
    plan = tick_until_moved(plan)
    assert (plan.step_index, plan.state, served_rollout(prod)) == (0, PlanState.PAUSED, "1")
    assert plan.message.startswith("stepped back: the analysis failed")
    assert plan.gate["decision"] == "fail" and plan.gate["args"] == {
        "flag": "checkout",
        "max": "0.05",
    }
    [look] = plan.gate["history"]["error-ratio"]
    assert look["phase"] == "failed"
    back = AuditEvent.objects.filter(action="flag.plan.step_back").get()
    assert back.actor_name == "flags-plans"


def test_a_passing_analysis_moves_the_plan_on(template, actor, prod):
    flag = make_flag(actor, prod, "search")
    plan = plans.promote(actor, plans.start(actor, flag, prod, steps(template)))
    assert plans.tick() == 0  # the first look of two: still measuring
    client = Client()
    client.force_login(factories.make_persona("viewer", prod))
    html = client.get("/flags/search/").content.decode()
    assert 'data-analysis="running"' in html and "flag-errors" in html and "on vs off" in html
    plan = tick_until_moved(plan)
    assert (plan.step_index, plan.state, served_rollout(prod)) == (2, PlanState.COMPLETED, "100")
    assert AuditEvent.objects.filter(action="flag.plan.advance").count() == 1


def test_the_analysis_gate_is_validated(template, actor, prod):
    flag = make_flag(actor, prod)
    gate = {"gate": "analysis"}
    with pytest.raises(Exception) as bad:
        plans.start(
            actor,
            flag,
            prod,
            [
                {"percent": 10, **gate},
                {"percent": 20, **gate, "analysis": {"template": "nope"}},
                {"percent": 30, **gate, "analysis": {"template": template, "args": {"x": "1"}}},
                {"percent": 40, "analysis": {"template": template}},
                {"percent": 100, **gate, "analysis": {"template": template, "canary": "off"}},
            ],
        )
    paths = [e["path"] for e in bad.value.details["errors"]]
    assert paths == [
        "steps[0].analysis",
        "steps[1].analysis.template",
        "steps[2].analysis.args.x",
        "steps[3].analysis",
        "steps[4].analysis.canary",
    ]
