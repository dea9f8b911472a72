"""A kubernetes target through the REST API: its config is checked by path (422, never a 500),
and what its router cannot do is refused when a deployment is asked for. (No cluster is
called: creating a target and refusing a deployment happen before any tick.)"""

from __future__ import annotations

import pytest

from tests import factories
from tests.integrations.kubernetes.conftest import target_config
from tests.releases.api.test_api import Api, assert_error, error_paths, token  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, token):  # noqa: F811
    factories.make_service("api")
    factories.make_environment("prod")
    return Api(client, token)


def test_a_kubernetes_target_is_created_with_its_config(api):
    response = api.put(
        "/services/api/targets/prod", {"provider": "kubernetes", "config": target_config()}
    )
    assert response.status_code in (200, 201), response.content
    assert response.json()["provider"] == "kubernetes"


def test_a_bad_kubernetes_config_is_a_422_naming_every_path(api):
    config = {**target_config({"kind": "gateway-api"}), "namespace": "Bad_NS"}
    del config["template"]
    response = api.put("/services/api/targets/prod", {"provider": "kubernetes", "config": config})
    assert_error(response, 422)
    assert sorted(error_paths(response)) == [
        "config.namespace",
        "config.router.route",
        "config.template",
    ]


def test_a_canary_on_a_service_selector_target_is_refused_naming_the_capability(api):
    config = target_config({"kind": "service-selector"})
    api.put("/services/api/targets/prod", {"provider": "kubernetes", "config": config})
    api.post("/services/api/releases", {"version": "2.0.0", "artifact": {"image": "r/api:2"}})
    response = api.post(
        "/deployments",
        {
            "service": "api",
            "environment": "prod",
            "version": "2.0.0",
            "strategy": {"kind": "canary", "steps": [{"set_weight": 10}], "stable_replicas": 1},
        },
    )
    body = assert_error(response, 422)
    assert body["details"]["missing_capabilities"] == ["weights"]
    assert body["message"].endswith("(this target: dev · shop/api · service-selector).")
