"""The ready-made analysis templates for kubernetes routers are valid templates, install with
the management command, and render per slot to the names the provider gives the slot's pods.
(No Prometheus or cluster involved: the rendering is checked as text.)"""

from __future__ import annotations

import pytest
from django.core.management import call_command

from integrations.kubernetes.analysis import TEMPLATES, template_for
from integrations.metrics.prometheus import render
from releases.models import AnalysisTemplate
from strategies.analysis.template import normalise
from tests.integrations.kubernetes.conftest import target_config


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_each_template_is_valid(name):
    spec = normalise(TEMPLATES[name])
    assert [m["name"] for m in spec["metrics"]] == ["errors", "latency"]


def test_the_router_selects_its_template():
    assert template_for(target_config({"kind": "istio", "virtual_service": "api"})) == (
        "kubernetes-istio"
    )
    assert template_for(target_config({"kind": "ingress-nginx", "ingress": "api"})) == (
        "kubernetes-ingress-nginx"
    )
    assert template_for(target_config()) is None  # gateway-api: no standard metrics


def test_queries_select_the_slot_by_the_names_the_provider_gives_it():
    errors = TEMPLATES["kubernetes-istio"]["metrics"][0]
    values = {"args.namespace": "shop", "args.name": "api", "slot": "green", "window": "60s"}
    assert render(errors["query"], values) == (
        'sum(increase(istio_requests_total{reporter="destination", '
        'destination_workload_namespace="shop", destination_workload="api-green", '
        'response_code=~"5.."}[60s]))'
    )
    nginx = TEMPLATES["kubernetes-ingress-nginx"]["metrics"][0]
    assert render(nginx["total_query"], values) == (
        'sum(increase(nginx_ingress_controller_requests{namespace="shop", '
        'service="api-green"}[60s]))'
    )


@pytest.mark.django_db
def test_the_command_installs_them():
    call_command("kubernetes_templates")
    assert set(AnalysisTemplate.objects.values_list("name", flat=True)) >= set(TEMPLATES)
