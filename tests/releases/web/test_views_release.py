"""The release page and its "Deploy to..." form."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from django.utils.html import escape

from releases.models import Deployment, State
from tests import factories
from tests.releases.web.test_views_common import ship

pytestmark = pytest.mark.django_db

SPEC = {"kind": "rolling", "replicas": 3, "batch_size": 1}


@pytest.fixture
def client_in(admin, client):
    client.force_login(admin)
    return client


@pytest.fixture
def places(service, dev, prod):
    """api runs in dev (1.0.0 live) and prod (nothing yet); 1.1.0 is released."""
    dev_target = factories.make_target(service, dev)
    factories.make_target(service, prod)
    ship(dev_target, "1.0.0")
    factories.make_release(service, "1.1.0")
    return dev_target


def url(version="1.1.0", **query):
    base = reverse("release", args=["api", version])
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def deploy(client, data, version="1.1.0"):
    return client.post(reverse("release-deploy", args=["api", version]), data)


def test_the_release_page_shows_where_it_is_live(client_in, places):
    response = client_in.get(url("1.0.0"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "1.0.0" in html and "dev" in html and "&quot;sample&quot;" in html
    assert client_in.get(url("9.9.9")).status_code == 404


def test_the_form_prefills_the_default_strategy_of_the_first_environment_not_running_it(
    client_in, places, service
):
    service.default_strategy = SPEC
    service.save()
    html = client_in.get(url()).content.decode()
    assert 'name="environment" value="dev"' in html  # dev runs 1.0.0, not 1.1.0
    assert "prefilled from the default of the service api" in html
    assert "&quot;replicas&quot;: 3" in html and "&quot;batch_size&quot;: 1" in html
    assert "Deploy 1.1.0 to Dev" in html

    html = client_in.get(url("1.0.0")).content.decode()
    assert 'name="environment" value="prod"' in html  # 1.0.0 already runs in dev


def test_the_target_s_strategy_wins_over_the_service_default(client_in, places, service):
    service.default_strategy = SPEC
    service.save()
    places.strategy = {"kind": "recreate", "replicas": 1}
    places.save()
    html = client_in.get(url(env="dev")).content.decode()
    assert "prefilled from this target&#x27;s strategy" in html
    assert "&quot;kind&quot;: &quot;recreate&quot;" in html


def test_it_deploys_with_the_edited_strategy_and_opens_the_deployment(client_in, places):
    response = deploy(
        client_in,
        {"environment": "prod", "strategy": json.dumps(SPEC), "reason": "ship it"},
    )
    d = Deployment.objects.get(target__environment__slug="prod")
    assert response.status_code == 302
    assert response["Location"] == reverse("deployment", args=[d.pk])
    assert d.strategy["replicas"] == 3 and d.reason == "ship it"
    assert d.created_via == "ui" and d.created_by.username == "admin"


def test_an_empty_strategy_box_means_the_default(client_in, places):
    deploy(client_in, {"environment": "prod", "strategy": "  "})
    d = Deployment.objects.get(target__environment__slug="prod")
    assert d.strategy["kind"] == "rolling" and d.strategy["replicas"] == 2


def test_it_shows_each_error_by_path_with_the_api_s_messages(client_in, places):
    bad = {"kind": "rolling", "replicas": 0, "batch_size": "150%", "surprise": True}
    response = deploy(client_in, {"environment": "prod", "strategy": json.dumps(bad)})
    assert response.status_code == 422
    html = response.content.decode()
    api = client_in.post(
        "/api/v1/strategies/validate", {"strategy": bad}, content_type="application/json"
    ).json()
    assert api["code"] == "invalid_spec"
    assert len(api["details"]["errors"]) == 3
    for error in api["details"]["errors"]:
        shown = escape(error["message"])
        assert f'<code class="path">{error["path"]}</code> {shown}' in html
    assert 'aria-invalid="true"' in html
    assert "surprise" in html  # the text typed is kept
    assert not Deployment.objects.filter(target__environment__slug="prod").exists()


def test_it_says_where_the_json_is_broken(client_in, places):
    response = deploy(client_in, {"environment": "prod", "strategy": '{"kind": "rolling",}'})
    assert response.status_code == 422
    assert "is not valid JSON" in response.content.decode()
    assert "(line 1, column" in response.content.decode()


def test_check_validates_without_deploying(client_in, places):
    response = deploy(
        client_in, {"environment": "prod", "strategy": json.dumps(SPEC), "check": "1"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<b>Valid</b>: a rolling deployment in 3 steps" in html
    assert "batch 1 of 3" in html
    assert not Deployment.objects.filter(target__environment__slug="prod").exists()


def test_the_form_is_off_while_a_deployment_is_active_there(client_in, places):
    active = factories.make_deployment(places, "1.1.0")
    html = client_in.get(url(env="dev")).content.decode()
    assert f"Deployment #{active.pk} (1.1.0, pending) is active in dev" in html
    assert "data-deploy-submit disabled" in html
    response = deploy(client_in, {"environment": "dev", "strategy": ""})
    assert response.status_code == 409
    assert "Another deployment" in response.content.decode()
    assert Deployment.objects.filter(state=State.PENDING).count() == 1


def test_it_refuses_an_environment_the_service_does_not_run_in(client_in, places):
    factories.make_environment("staging")
    response = deploy(client_in, {"environment": "staging", "strategy": ""})
    assert response.status_code == 400
    assert "api does not run in staging" in response.content.decode()


def test_deploying_needs_a_signed_in_user(client, places):
    response = deploy(client, {"environment": "prod", "strategy": ""})
    assert response.status_code == 302
    assert not Deployment.objects.filter(target__environment__slug="prod").exists()


def test_a_viewer_sees_why_they_cannot_deploy(client, places, dev, prod):
    client.force_login(factories.make_persona("viewer", prod))
    factories.grant(factories.make_user("viewer", superuser=False), "deployer", dev)
    html = client.get(url(env="prod")).content.decode()
    assert "data-deploy-submit disabled" in html
    assert "You may not start a deployment here: it needs the deployer role on api in prod" in html
    response = deploy(client, {"environment": "prod", "strategy": ""})
    assert response.status_code == 403
    assert not Deployment.objects.filter(target__environment__slug="prod").exists()
    assert "data-deploy-submit disabled" not in client.get(url(env="dev")).content.decode()
