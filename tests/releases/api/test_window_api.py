"""The rollback window through the REST API: the environment's setting (validated, audited), the
target view's ``rollback_window`` (what is held, until when, what a rollback does now), and
``POST /deployments/{id}/end-window`` (202, then 409; the deployer role and the operate scope)."""

from __future__ import annotations

import pytest

from releases.governance import tokens
from releases.models import AuditEvent, Environment
from tests import factories
from tests.releases.api.test_api import Api, assert_error
from tests.releases.web.test_views_target import succeeded_with_window

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, admin):
    return Api(client, tokens.create(admin, "ci")[1])


def test_the_environment_sets_its_window_and_zero_turns_it_off(api, dev):
    assert api.get("/environments/dev").json()["rollback_window"] == 300
    assert api.patch("/environments/dev", {"rollback_window": 0}).status_code == 200
    assert Environment.objects.get(slug="dev").rollback_window == 0
    assert AuditEvent.objects.filter(action="environment.update").count() == 1
    assert api.patch("/environments/dev", {"rollback_window": None}).status_code == 200
    assert Environment.objects.get(slug="dev").rollback_window == 0  # null leaves it as it is
    assert_error(api.patch("/environments/dev", {"rollback_window": -1}), 422, "invalid_request")
    created = api.post("/environments", {"slug": "qa", "rollback_window": 60}).json()
    assert created["rollback_window"] == 60


def test_the_target_view_shows_the_cost_and_the_window_ends_early(api, target):
    d = succeeded_with_window(target)
    window = api.get("/services/api/targets/dev").json()["rollback_window"]
    assert window["open"] and window["deployment"] == d.pk and window["version"] == "1.0.0"
    assert window["slot"] == d.stable_slot and window["until"] == d.window_until.isoformat()
    assert window["instances"] >= 1 and window["available"] and window["seconds"] == 300
    response = api.post(f"/deployments/{d.pk}/end-window", {"reason": "cost"})
    assert response.status_code == 202 and response.json()["id"] == d.pk
    assert AuditEvent.objects.filter(action="deployment.end_window").count() == 1
    assert not api.get("/services/api/targets/dev").json()["rollback_window"]["open"]
    assert_error(api.post(f"/deployments/{d.pk}/end-window"), 409, "conflict")


def test_ending_a_window_needs_the_deployer_role_and_the_operate_scope(client, target):
    d = succeeded_with_window(target)
    viewer = factories.make_persona("viewer", target.environment)
    as_viewer = Api(client, tokens.create(viewer, "v")[1])
    assert_error(as_viewer.post(f"/deployments/{d.pk}/end-window"), 403, "forbidden")
    deployer = factories.make_persona("deployer", target.environment)
    read_only = Api(client, tokens.create(deployer, "r", scopes=["read"])[1])
    assert_error(read_only.post(f"/deployments/{d.pk}/end-window"), 403)
    operate = Api(client, tokens.create(deployer, "o", scopes=["deployment.operate"])[1])
    assert operate.post(f"/deployments/{d.pk}/end-window").status_code == 202
