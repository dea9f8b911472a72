"""The REST API v1 against /work/shared/API.md: auth, each resource, status codes, error shape."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from releases import actions
from releases.governance import tokens
from releases.live.presenters import deployment_dict
from releases.models import (
    AuditEvent,
    Channel,
    Deployment,
    DeploymentEvent,
    Environment,
    Service,
    State,
    Target,
)
from tests import factories

pytestmark = pytest.mark.django_db

BASE = "/api/v1"
NOTHING = object()
ROLLING = {"kind": "rolling", "replicas": 2}


# --- helpers ----------------------------------------------------------------------------------


def call(client, method, path, body=NOTHING, *, token=None, raw=None, headers=None):
    headers = dict(headers or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else ("" if body is NOTHING else json.dumps(body))
    return client.generic(
        method, BASE + path, data=data, content_type="application/json", headers=headers
    )


def assert_error(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], dict)
    if code is not None:
        assert body["code"] == code, body
    return body


def error_paths(response) -> list[str]:
    return [e["path"] for e in response.json()["details"]["errors"]]


class Api:
    """A CI client: every call carries the admin's token."""

    def __init__(self, client, token):
        self.client, self.token = client, token

    def __call__(self, method, path, body=NOTHING, **kw):
        kw.setdefault("token", self.token)
        return call(self.client, method, path, body, **kw)

    def get(self, path, **kw):
        return self("GET", path, **kw)

    def post(self, path, body=NOTHING, **kw):
        return self("POST", path, body, **kw)

    def put(self, path, body=NOTHING, **kw):
        return self("PUT", path, body, **kw)

    def patch(self, path, body=NOTHING, **kw):
        return self("PATCH", path, body, **kw)


@pytest.fixture
def token(admin):
    return tokens.create(admin, "ci")[1]


@pytest.fixture
def api(client, token):
    return Api(client, token)


@pytest.fixture
def release(target):
    return factories.make_release(target.service, "1.0.0")


@pytest.fixture
def deployment(target, release):
    return factories.make_deployment(target, "1.0.0", ROLLING)


def started(d: Deployment) -> Deployment:
    """As the first tick leaves it: progressing."""
    assert actions.mark_started(d)
    return Deployment.objects.get(pk=d.pk)


def finish(d: Deployment, state=State.SUCCEEDED) -> Deployment:
    """End a deployment as the reconcile loop would (through its command)."""
    d = Deployment.objects.select_related("release", "target").get(pk=d.pk)
    assert actions.record_tick(
        d,
        observed={},
        endpoint="http://127.0.0.1:9101",
        progress={},
        step_index=1,
        step="done",
        weights={"stable": 100},
        message="",
        new_events=[],
        new_state=state,
    )
    return Deployment.objects.get(pk=d.pk)


# Every endpoint behind auth, with a body that would be accepted.
ENDPOINTS = [
    ("GET", "/services", NOTHING),
    ("POST", "/services", {"slug": "web"}),
    ("GET", "/services/api", NOTHING),
    ("PATCH", "/services/api", {"team": "core"}),
    ("GET", "/environments", NOTHING),
    ("POST", "/environments", {"slug": "qa"}),
    ("GET", "/environments/dev", NOTHING),
    ("PATCH", "/environments/dev", {"order": 5}),
    ("GET", "/services/api/targets", NOTHING),
    ("GET", "/services/api/targets/dev", NOTHING),
    ("PUT", "/services/api/targets/dev", {"provider": "local", "config": {}}),
    ("POST", "/services/api/releases", {"version": "2.0.0"}),
    ("GET", "/services/api/releases", NOTHING),
    ("GET", "/services/api/releases/1.0.0", NOTHING),
    ("POST", "/deployments", {"service": "api", "environment": "dev", "version": "1.0.0"}),
    ("GET", "/deployments", NOTHING),
    ("GET", "/deployments/{id}", NOTHING),
    ("POST", "/deployments/{id}/promote", {"full": True}),
    ("POST", "/deployments/{id}/pause", NOTHING),
    ("POST", "/deployments/{id}/resume", NOTHING),
    ("POST", "/deployments/{id}/abort", {"reason": "x"}),
    ("POST", "/deployments/{id}/rollback", NOTHING),
    ("POST", "/deployments/{id}/approve", NOTHING),
    ("POST", "/deployments/{id}/reject", NOTHING),
    ("GET", "/deployments/{id}/events", NOTHING),
    ("POST", "/strategies/validate", {"strategy": ROLLING}),
]


def _ids(endpoint):
    return f"{endpoint[0]} {endpoint[1]}"


# --- auth -------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids)
def test_every_endpoint_refuses_a_request_without_a_token(client, deployment, endpoint):
    method, path, body = endpoint
    before = (Service.objects.count(), Deployment.objects.count(), AuditEvent.objects.count())

    response = call(client, method, path.format(id=deployment.pk), body)

    error = assert_error(response, 401, "not_authenticated")
    assert "Bearer" in error["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    after = (Service.objects.count(), Deployment.objects.count(), AuditEvent.objects.count())
    assert after == before
    assert Deployment.objects.get(pk=deployment.pk).state == State.PENDING


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids)
def test_every_endpoint_refuses_a_wrong_token(client, admin, deployment, endpoint):
    method, path, body = endpoint
    row, real = tokens.create(admin, "ci")
    wrong = f"swy_{row.prefix}_{'A' * 43}"

    response = call(client, method, path.format(id=deployment.pk), body, token=wrong)

    error = assert_error(response, 401, "not_authenticated")
    assert "not valid" in error["message"]
    assert Deployment.objects.get(pk=deployment.pk).state == State.PENDING


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids)
def test_every_endpoint_refuses_a_revoked_token(client, admin, deployment, endpoint):
    method, path, body = endpoint
    row, token = tokens.create(admin, "ci")
    tokens.revoke(row.prefix)

    response = call(client, method, path.format(id=deployment.pk), body, token=token)

    error = assert_error(response, 401, "not_authenticated")
    assert "revoked" in error["message"]
    assert Deployment.objects.get(pk=deployment.pk).state == State.PENDING


def test_an_expired_token_is_refused_with_a_message_saying_so(client, admin):
    _, token = tokens.create(admin, "ci", expires_at=timezone.now() - timedelta(minutes=1))

    error = assert_error(call(client, "GET", "/services", token=token), 401, "not_authenticated")

    assert "expired" in error["message"]


@pytest.mark.parametrize(
    "header", ["Basic YWRtaW46cHc=", "Bearer", "Bearer   ", "Token swy_x", "swy_abc"]
)
def test_a_malformed_authorization_header_is_refused(client, admin, header):
    response = call(client, "GET", "/services", headers={"Authorization": header})

    assert_error(response, 401, "not_authenticated")


def test_a_valid_token_authenticates_and_records_its_last_use(api, admin):
    response = api.get("/services")

    assert response.status_code == 200
    row = admin.api_tokens.get()
    assert row.last_used_at is not None
    assert row.last_used_from == "127.0.0.1"


def test_a_bad_token_is_refused_even_with_a_logged_in_session(client, admin):
    client.force_login(admin)

    response = call(client, "GET", "/services", token="swy_abcdefgh_" + "A" * 43)

    assert_error(response, 401, "not_authenticated")


def test_a_logged_in_session_can_read(client, admin, service):
    client.force_login(admin)

    response = call(client, "GET", "/services")

    assert response.status_code == 200
    assert [s["slug"] for s in response.json()["items"]] == ["api"]


def test_a_session_write_without_the_csrf_token_is_forbidden(admin):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin)

    response = call(browser, "POST", "/services", {"slug": "web"})

    error = assert_error(response, 403, "forbidden")
    assert "CSRF" in error["message"]
    assert not Service.objects.filter(slug="web").exists()


def test_a_session_write_with_the_csrf_token_is_accepted_as_the_dashboard(admin):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin)
    secret = "a" * 32
    browser.cookies["csrftoken"] = secret

    response = call(browser, "POST", "/services", {"slug": "web"}, headers={"X-CSRFToken": secret})

    assert response.status_code == 201, response.content
    event = AuditEvent.objects.get(action="service.create")
    assert event.actor == admin and event.channel == Channel.UI


def test_a_token_write_needs_no_csrf_token(admin, token):
    browser = Client(enforce_csrf_checks=True)

    response = call(browser, "POST", "/services", {"slug": "web"}, token=token)

    assert response.status_code == 201


def test_a_read_scoped_token_can_read_but_not_act(client, admin, deployment):
    _, token = tokens.create(admin, "dashboard-tv", scopes=["read"])

    assert call(client, "GET", f"/deployments/{deployment.pk}", token=token).status_code == 200
    assert (
        call(client, "POST", "/strategies/validate", {"strategy": ROLLING}, token=token).status_code
        == 200
    )
    response = call(client, "POST", f"/deployments/{deployment.pk}/pause", token=token)

    error = assert_error(response, 403, "forbidden")
    assert error["details"]["needed_scope"] == "write"
    assert Deployment.objects.get(pk=deployment.pk).state == State.PENDING


def test_a_write_scoped_token_can_read_and_act(client, admin, deployment):
    _, token = tokens.create(admin, "ci", scopes=["write"])

    assert call(client, "GET", "/deployments", token=token).status_code == 200
    assert (
        call(client, "POST", f"/deployments/{deployment.pk}/pause", token=token).status_code == 202
    )


def test_the_docs_and_the_schema_are_public_and_list_every_path(client):
    assert client.get(f"{BASE}/docs").status_code == 200
    response = client.get(f"{BASE}/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    for expected in (
        "/services",
        "/services/{slug}",
        "/environments",
        "/environments/{slug}",
        "/services/{slug}/targets",
        "/services/{slug}/targets/{env}",
        "/services/{slug}/releases",
        "/services/{slug}/releases/{version}",
        "/deployments",
        "/deployments/{id}",
        "/deployments/{id}/promote",
        "/deployments/{id}/pause",
        "/deployments/{id}/resume",
        "/deployments/{id}/abort",
        "/deployments/{id}/rollback",
        "/deployments/{id}/approve",
        "/deployments/{id}/reject",
        "/deployments/{id}/events",
        "/strategies/validate",
    ):
        assert BASE + expected in paths, expected


def test_an_unknown_path_is_a_json_404(api):
    assert_error(api.get("/nope"), 404, "not_found")
    error = assert_error(api.get("/services/"), 404, "not_found")
    assert "trailing slash" in error["message"]


def test_an_unsupported_method_is_a_json_405(api):
    response = api("DELETE", "/services")

    error = assert_error(response, 405, "method_not_allowed")
    assert "GET" in error["details"]["allowed"] and "POST" in error["details"]["allowed"]


# --- services and environments ----------------------------------------------------------------


def test_it_creates_a_service_and_audits_it(api, admin):
    response = api.post(
        "/services", {"slug": "web", "name": "Web", "team": "core", "default_strategy": ROLLING}
    )

    assert response.status_code == 201
    body = response.json()
    assert body["slug"] == "web" and body["name"] == "Web" and body["team"] == "core"
    assert body["default_strategy"]["kind"] == "rolling"
    assert body["default_strategy"]["batch_size"] == 1  # normalised
    event = AuditEvent.objects.get(action="service.create")
    assert (
        event.actor == admin and event.channel == Channel.API and event.actor_name == "admin (ci)"
    )


def test_creating_a_service_twice_is_a_conflict(api, service):
    assert_error(api.post("/services", {"slug": "api"}), 409, "conflict")


@pytest.mark.parametrize("slug", ["", "Web", "web_app", "-web", "a" * 64, "wéb", "web/app"])
def test_a_service_slug_must_be_a_lowercase_slug(api, slug):
    response = api.post("/services", {"slug": slug})

    assert_error(response, 422, "invalid_request")
    assert error_paths(response) == ["slug"]


def test_a_service_with_a_bad_default_strategy_is_an_invalid_spec(api):
    response = api.post(
        "/services", {"slug": "web", "default_strategy": {"kind": "rolling", "replicas": 0}}
    )

    assert_error(response, 422, "invalid_spec")
    assert error_paths(response) == ["replicas"]
    assert not Service.objects.filter(slug="web").exists()


def test_it_lists_and_shows_services(api, service):
    factories.make_service("web")

    assert [s["slug"] for s in api.get("/services").json()["items"]] == ["api", "web"]
    assert api.get("/services/api").json()["links"]["releases"] == "/api/v1/services/api/releases"
    assert_error(api.get("/services/nope"), 404, "not_found")


def test_it_updates_a_service_and_audits_the_change(api, service):
    response = api.patch("/services/api", {"team": "payments", "default_strategy": ROLLING})

    assert response.status_code == 200
    assert response.json()["team"] == "payments"
    event = AuditEvent.objects.get(action="service.update")
    assert set(event.data) == {"team", "default_strategy"}
    cleared = api.patch("/services/api", {"default_strategy": None}).json()
    assert cleared["default_strategy"] is None


def test_a_service_update_refuses_unknown_fields_and_the_slug(api, service):
    response = api.patch("/services/api", {"slug": "other", "colour": "red"})

    assert_error(response, 422, "invalid_request")
    assert sorted(error_paths(response)) == ["colour", "slug"]
    assert_error(api.patch("/services/nope", {"team": "x"}), 404, "not_found")


def test_it_creates_environments_in_promotion_order(api, dev, prod):
    response = api.post("/environments", {"slug": "staging", "order": 20})
    assert response.status_code == 201
    last = api.post("/environments", {"slug": "perf"}).json()

    assert last["order"] > prod.order
    slugs = [e["slug"] for e in api.get("/environments").json()["items"]]
    assert slugs == ["dev", "staging", "prod", "perf"]
    assert AuditEvent.objects.filter(action="environment.create").count() == 2


def test_creating_an_environment_twice_is_a_conflict(api, dev):
    assert_error(api.post("/environments", {"slug": "dev"}), 409, "conflict")


def test_it_shows_and_updates_an_environment(api, dev):
    assert api.get("/environments/dev").json()["name"] == "Dev"

    response = api.patch("/environments/dev", {"order": 99, "name": "Development"})

    assert response.status_code == 200
    assert Environment.objects.get(slug="dev").order == 99
    assert AuditEvent.objects.filter(action="environment.update").count() == 1
    assert_error(api.get("/environments/nope"), 404, "not_found")


# --- targets ----------------------------------------------------------------------------------


def test_put_creates_a_target_then_replaces_it(api, service, dev, admin):
    response = api.put("/services/api/targets/dev", {"provider": "local", "config": {}})
    assert response.status_code == 201
    assert response.json()["strategy"] is None

    response = api.put(
        "/services/api/targets/dev",
        {"provider": "local", "config": {"router_port": 9101}, "strategy": ROLLING},
    )

    assert response.status_code == 200
    body = response.json()
    assert body["config"] == {"router_port": 9101}
    assert body["strategy"]["kind"] == "rolling"
    assert Target.objects.count() == 1
    actions = AuditEvent.objects.filter(action__startswith="target.").order_by("id")
    assert [e.action for e in actions] == ["target.create", "target.update"]


def test_get_target_shows_endpoint_stable_version_and_slots_from_the_row(api, target, release):
    observed = {"blue": {"version": "1.0.0", "desired": 2, "ready": 2, "weight": 100}}
    Target.objects.filter(pk=target.pk).update(
        endpoint="http://127.0.0.1:9101", stable_release=release, observed=observed
    )

    body = api.get("/services/api/targets/dev").json()

    assert body["endpoint"] == "http://127.0.0.1:9101"
    assert body["stable_version"] == "1.0.0"
    assert body["slots"] == observed
    assert [t["environment"] for t in api.get("/services/api/targets").json()["items"]] == ["dev"]


def test_get_target_that_does_not_exist_is_404(api, service, dev):
    assert_error(api.get("/services/api/targets/dev"), 404, "not_found")
    assert_error(api.get("/services/api/targets/nope"), 404, "not_found")
    assert_error(api.get("/services/nope/targets"), 404, "not_found")


def test_put_target_with_a_bad_config_lists_each_path(api, service, dev):
    response = api.put(
        "/services/api/targets/dev", {"provider": "local", "config": {"router_port": 80, "x": 1}}
    )

    error = assert_error(response, 422, "invalid_request")
    assert sorted(error_paths(response)) == ["config.router_port", "config.x"]
    assert "config" in error["message"]
    assert not Target.objects.exists()


def test_put_target_with_an_unknown_provider_names_the_provider(api, service, dev):
    response = api.put("/services/api/targets/dev", {"provider": "heroku", "config": {}})

    assert_error(response, 422, "invalid_request")
    assert error_paths(response) == ["provider"]


def test_put_target_with_a_bad_strategy_is_an_invalid_spec(api, service, dev):
    response = api.put(
        "/services/api/targets/dev", {"config": {}, "strategy": {"kind": "rolling", "bogus": 1}}
    )

    assert_error(response, 422, "invalid_spec")
    assert error_paths(response) == ["bogus"]


def test_put_target_refuses_to_move_a_target_under_an_active_deployment(api, deployment):
    response = api.put("/services/api/targets/dev", {"config": {"router_port": 9200}})

    error = assert_error(response, 409, "conflict")
    assert error["details"]["active_deployment"] == deployment.pk
    # the strategy alone may change: deployments snapshot theirs
    assert api.put("/services/api/targets/dev", {"strategy": ROLLING}).status_code == 200


# --- releases ---------------------------------------------------------------------------------

RELEASE = {"version": "1.4.2", "artifact": {"sample": {}}, "commit": "abc123", "notes": "fix"}


def test_a_release_is_created_then_idempotent_then_immutable(api, service, admin):
    first = api.post("/services/api/releases", RELEASE)
    assert first.status_code == 201
    assert first.json()["version"] == "1.4.2"
    assert first.json()["created_by"] == "admin"

    again = api.post("/services/api/releases", RELEASE)
    assert again.status_code == 200
    assert again.json() == first.json()

    different = api.post("/services/api/releases", {**RELEASE, "commit": "def456"})
    error = assert_error(different, 409, "conflict")
    assert "immutable" in error["message"]
    assert AuditEvent.objects.filter(action="release.create").count() == 1


@pytest.mark.parametrize("version", ["", " ", "1.0 beta", "../x", "v" * 129, "1.0/2", "-1"])
def test_a_release_version_must_be_plain(api, service, version):
    response = api.post("/services/api/releases", {"version": version})

    assert_error(response, 422, "invalid_request")
    assert error_paths(response) == ["version"]


def test_a_release_of_an_unknown_service_is_404(api):
    assert_error(api.post("/services/nope/releases", RELEASE), 404, "not_found")


def test_it_lists_releases_newest_first_in_pages(api, service):
    for n in range(5):
        factories.make_release(service, f"1.0.{n}")

    page = api.get("/services/api/releases?limit=2").json()
    assert [r["version"] for r in page["items"]] == ["1.0.4", "1.0.3"]
    rest = api.get(f"/services/api/releases?limit=2&before={page['next']}").json()
    assert [r["version"] for r in rest["items"]] == ["1.0.2", "1.0.1"]
    last = api.get(f"/services/api/releases?limit=2&before={rest['next']}").json()
    assert [r["version"] for r in last["items"]] == ["1.0.0"] and last["next"] is None


def test_it_shows_one_release(api, release):
    assert api.get("/services/api/releases/1.0.0").json()["artifact"] == {"sample": {}}
    assert_error(api.get("/services/api/releases/9.9.9"), 404, "not_found")


# --- deployments ------------------------------------------------------------------------------

DEPLOY = {"service": "api", "environment": "dev", "version": "1.0.0", "strategy": ROLLING}


def test_it_starts_a_deployment(api, target, release, admin):
    response = api.post("/deployments", {**DEPLOY, "reason": "ship the fix"})

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "pending" and body["active"] is True
    assert body["service"] == "api" and body["environment"] == "dev"
    assert body["target_version"] == "1.0.0" and body["stable_version"] is None
    assert body["strategy"]["kind"] == "rolling"
    assert body["step"] == {"index": 0, "description": ""}
    assert body["links"]["self"] == f"/api/v1/deployments/{body['id']}"
    assert body["reason"] == "ship the fix" and body["created_by"] == "admin"
    d = Deployment.objects.get(pk=body["id"])
    assert d.created_via == Channel.API
    assert AuditEvent.objects.filter(action="deployment.create", object_id=str(d.pk)).exists()


def test_a_deployment_uses_the_targets_strategy_when_none_is_given(api, target, release):
    Target.objects.filter(pk=target.pk).update(strategy={"kind": "recreate", "replicas": 3})

    body = api.post("/deployments", {k: v for k, v in DEPLOY.items() if k != "strategy"}).json()

    assert body["strategy"]["kind"] == "recreate" and body["strategy"]["replicas"] == 3


def test_the_same_idempotency_key_returns_the_first_deployment(api, target, release):
    headers = {"Idempotency-Key": "build-77"}

    first = api.post("/deployments", DEPLOY, headers=headers)
    second = api.post("/deployments", DEPLOY, headers=headers)

    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert Deployment.objects.count() == 1


def test_a_second_deployment_while_one_is_active_is_a_conflict_naming_it(api, deployment):
    factories.make_release(deployment.target.service, "1.1.0")

    response = api.post("/deployments", {**DEPLOY, "version": "1.1.0"})

    error = assert_error(response, 409, "conflict")
    assert error["details"]["active_deployment"] == deployment.pk
    assert f"#{deployment.pk}" in error["message"]


def test_a_deployment_with_an_invalid_strategy_lists_every_error_by_path(api, target, release):
    strategy = {"kind": "rolling", "replicas": 0, "batch_size": "140%", "surprise": True}

    response = api.post("/deployments", {**DEPLOY, "strategy": strategy})

    assert_error(response, 422, "invalid_spec")
    paths = error_paths(response)
    assert "replicas" in paths and "surprise" in paths
    assert all(isinstance(e["message"], str) for e in response.json()["details"]["errors"])
    assert not Deployment.objects.exists()


def test_a_deployment_of_an_unknown_release_service_or_target_is_404(api, target, release, prod):
    assert_error(api.post("/deployments", {**DEPLOY, "version": "9.9.9"}), 404, "not_found")
    assert_error(api.post("/deployments", {**DEPLOY, "service": "nope"}), 404, "not_found")
    error = assert_error(api.post("/deployments", {**DEPLOY, "environment": "prod"}), 404)
    assert "PUT" in error["message"]


def test_it_lists_deployments_with_filters_and_pages(api, target, release, prod):
    first = finish(factories.make_deployment(target, "1.0.0", ROLLING))
    second = factories.make_deployment(target, "1.0.0", ROLLING)
    in_prod = factories.make_deployment(factories.make_target(target.service, prod), "1.0.0")

    def ids(query):
        return [d["id"] for d in api.get(f"/deployments{query}").json()["items"]]

    assert ids("") == [in_prod.pk, second.pk, first.pk]
    assert ids("?environment=dev") == [second.pk, first.pk]
    assert ids("?state=succeeded") == [first.pk]
    assert ids("?service=api&environment=prod&state=pending") == [in_prod.pk]
    assert ids("?active=false") == [first.pk]
    assert ids("?service=other") == []
    page = api.get("/deployments?limit=2").json()
    assert [d["id"] for d in page["items"]] == [in_prod.pk, second.pk]
    assert ids(f"?limit=2&before={page['next']}") == [first.pk]
    assert_error(api.get("/deployments?state=exploded"), 422, "invalid_request")
    assert_error(api.get("/deployments?limit=0"), 422, "invalid_request")


def test_it_shows_a_deployment_as_the_live_views_do(api, deployment):
    body = api.get(f"/deployments/{deployment.pk}").json()

    assert body["id"] == deployment.pk and body["state"] == "pending"
    assert {"weights", "analysis", "created_at", "links", "step"} <= set(body)
    assert body == deployment_dict(Deployment.objects.get(pk=deployment.pk))


def test_listing_deployments_takes_the_same_queries_for_more_rows(
    api, target, django_assert_max_num_queries
):
    factories.make_release(target.service, "1.0.0")
    for _ in range(3):
        finish(factories.make_deployment(target, "1.0.0", ROLLING))
    with CaptureQueriesContext(connection) as few:
        assert api.get("/deployments").status_code == 200
    for _ in range(6):
        finish(factories.make_deployment(target, "1.0.0", ROLLING))

    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(api.get("/deployments").json()["items"]) == 9


@pytest.mark.parametrize("bad_id", ["999999", str(10**30), "-1", "abc"])
def test_a_missing_deployment_is_404_and_a_bad_id_is_invalid(api, db, bad_id):
    response = api.get(f"/deployments/{bad_id}")

    assert response.status_code in (404, 422)
    assert_error(response, response.status_code)


# --- operator commands ------------------------------------------------------------------------


def test_pause_then_resume_an_active_deployment(api, deployment):
    paused = api.post(f"/deployments/{deployment.pk}/pause")
    assert paused.status_code == 202
    assert paused.json()["state"] == "paused"

    resumed = api.post(f"/deployments/{deployment.pk}/resume")

    assert resumed.status_code == 202
    assert resumed.json()["state"] == "progressing"
    actions = AuditEvent.objects.filter(object_id=str(deployment.pk)).values_list(
        "action", flat=True
    )
    assert {"deployment.pause", "deployment.resume"} <= set(actions)


def test_resume_when_progressing_is_a_conflict(api, deployment):
    started(deployment)

    error = assert_error(api.post(f"/deployments/{deployment.pk}/resume"), 409, "conflict")

    assert error["details"]["state"] == "progressing"
    assert error["details"]["allowed_states"] == ["paused"]


def test_promote_records_the_intent(api, deployment):
    started(deployment)

    response = api.post(f"/deployments/{deployment.pk}/promote")

    assert response.status_code == 202
    assert response.json()["intent"] == "promote"
    full = api.post(f"/deployments/{deployment.pk}/promote", {"full": True})
    assert full.json()["intent"] == "promote_full"


def test_promote_when_pending_is_a_conflict(api, deployment):
    assert_error(api.post(f"/deployments/{deployment.pk}/promote"), 409, "conflict")


def test_abort_sends_traffic_back_and_records_the_reason(api, deployment):
    response = api.post(f"/deployments/{deployment.pk}/abort", {"reason": "wrong build"})

    assert response.status_code == 202
    assert response.json()["state"] == "rolling_back"
    assert Deployment.objects.get(pk=deployment.pk).rollback_outcome == State.ABORTED
    assert DeploymentEvent.objects.filter(deployment=deployment, message__contains="wrong build")


def test_abort_of_a_finished_deployment_is_a_conflict(api, deployment):
    finish(deployment)

    assert_error(api.post(f"/deployments/{deployment.pk}/abort"), 409, "conflict")


def test_rollback_of_an_active_deployment_returns_that_deployment(api, deployment):
    started(deployment)

    response = api.post(f"/deployments/{deployment.pk}/rollback")

    assert response.status_code == 202
    assert response.json()["id"] == deployment.pk
    assert response.json()["state"] == "rolling_back"


def test_rollback_of_a_succeeded_deployment_returns_the_new_rollback_deployment(
    api, target, release
):
    finish(factories.make_deployment(target, "1.0.0", ROLLING))
    second = finish(factories.make_deployment(target, "1.1.0", ROLLING))

    response = api.post(f"/deployments/{second.pk}/rollback", {"reason": "slow"})

    assert response.status_code == 202
    body = response.json()
    assert body["id"] != second.pk
    assert body["rollback_of"] == second.pk
    assert body["target_version"] == "1.0.0" and body["state"] == "pending"


def test_rollback_of_the_first_release_is_a_conflict(api, deployment):
    finish(deployment)

    error = assert_error(api.post(f"/deployments/{deployment.pk}/rollback"), 409, "conflict")

    assert "nothing to roll back to" in error["message"]


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_approve_or_reject_with_nothing_awaiting_is_a_conflict(api, deployment, action):
    # an unprotected environment: nothing awaits an approval (tests/releases/test_policy*.py)
    error = assert_error(api.post(f"/deployments/{deployment.pk}/{action}"), 409, "conflict")

    assert "nothing awaits an approval" in error["message"].lower()
    assert_error(api.post(f"/deployments/999999/{action}"), 404, "not_found")


@pytest.mark.parametrize("action", ["promote", "pause", "resume", "abort", "rollback"])
def test_an_operator_command_on_a_missing_deployment_is_404(api, db, action):
    assert_error(api.post(f"/deployments/999999/{action}"), 404, "not_found")


# --- the time line ----------------------------------------------------------------------------


def test_events_are_oldest_first_and_cursor_paginated(api, deployment):
    api.post(f"/deployments/{deployment.pk}/pause")
    api.post(f"/deployments/{deployment.pk}/resume")
    api.post(f"/deployments/{deployment.pk}/abort")
    all_ids = list(
        DeploymentEvent.objects.filter(deployment=deployment)
        .order_by("id")
        .values_list("id", flat=True)
    )
    assert len(all_ids) == 4

    page = api.get(f"/deployments/{deployment.pk}/events?limit=3").json()
    assert [e["id"] for e in page["items"]] == all_ids[:3]
    assert page["items"][0]["kind"] == "created"
    assert page["next"] == all_ids[2]

    rest = api.get(f"/deployments/{deployment.pk}/events?limit=3&after={page['next']}").json()
    assert [e["id"] for e in rest["items"]] == all_ids[3:]
    assert rest["next"] is None

    empty = api.get(f"/deployments/{deployment.pk}/events?after={all_ids[-1]}").json()
    assert empty == {"items": [], "next": None}


def test_events_of_a_missing_deployment_are_404(api, db):
    assert_error(api.get("/deployments/999999/events"), 404, "not_found")


# --- strategies -------------------------------------------------------------------------------


def test_validate_returns_the_normalised_spec_and_its_steps(api):
    response = api.post(
        "/strategies/validate",
        {"strategy": {"kind": "rolling", "replicas": 4, "batch_size": "50%"}},
    )

    assert response.status_code == 200
    body = response.json()
    assert body["strategy"]["kind"] == "rolling"
    assert body["strategy"]["max_unavailable"] == 0  # defaults filled in
    assert len(body["steps"]) == 2 and all(isinstance(s, str) for s in body["steps"])


def test_validate_lists_every_error_of_a_bad_spec(api):
    response = api.post(
        "/strategies/validate", {"strategy": {"kind": "rolling", "replicas": -1, "mystery": 1}}
    )

    error = assert_error(response, 422, "invalid_spec")
    assert {"replicas", "mystery"} <= set(error_paths(response))
    assert error["message"].startswith("The strategy is invalid")


@pytest.mark.parametrize("strategy", [None, [], "rolling", 3, {}, {"kind": "teleport"}])
def test_validate_refuses_what_is_not_a_spec(api, strategy):
    assert_error(api.post("/strategies/validate", {"strategy": strategy}), 422, "invalid_spec")


def test_validate_needs_a_strategy_key(api):
    response = api.post("/strategies/validate", {"kind": "rolling"})

    assert_error(response, 422, "invalid_request")
    assert sorted(error_paths(response)) == ["kind", "strategy"]


# --- garbage in, 4xx out ----------------------------------------------------------------------

GARBAGE = [
    b"not json",
    b"{",
    b"[1, 2, 3]",
    b'"a string"',
    b"12",
    b"\xff\xfe\x00garbage",
    b'{"version": NaN, "slug": Infinity}',
    b'{"version": 1e400, "order": 1e400}',
    b'{"slug": "x", "order": ' + b"9" * 5000 + b"}",
    b'{"order": 99999999999999999999999999999, "full": "maybe", "replicas": -1e308}',
    b'{"slug": 12, "version": [1], "service": {}, "strategy": "fast", "config": [], "reason": 5}',
    b'{"slug": "x\\u0000y", "version": "1\\u0000", "notes": "\\u0000", "reason": "\\u0000"}',
    b'{"slug": "\\ud800", "version": "\\udfff", "artifact": {"\\ud800": 1}, "reason": "\\ud800"}',
    '{"slug": "wéb-🚀", "version": "1.0-🚀", "service": "ä", "environment": "ö"}'.encode(),
    b'{"artifact": {"deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
    b'{"unknown": 1, "surprise": {"x": 1}}',
    b'{"notes": "' + b"x" * 30_000 + b'", "reason": "' + b"y" * 3000 + b'"}',
]
WRITE_ENDPOINTS = [
    ("POST", "/services"),
    ("PATCH", "/services/api"),
    ("POST", "/environments"),
    ("PATCH", "/environments/dev"),
    ("PUT", "/services/api/targets/dev"),
    ("POST", "/services/api/releases"),
    ("POST", "/deployments"),
    ("POST", "/deployments/{id}/promote"),
    ("POST", "/deployments/{id}/abort"),
    ("POST", "/deployments/{id}/rollback"),
    ("POST", "/deployments/{id}/approve"),
    ("POST", "/deployments/{id}/reject"),
    ("POST", "/strategies/validate"),
]


@pytest.mark.parametrize("endpoint", WRITE_ENDPOINTS, ids=lambda e: f"{e[0]} {e[1]}")
def test_garbage_input_is_a_4xx_with_the_error_shape(api, deployment, endpoint):
    method, path = endpoint
    path = path.format(id=deployment.pk)
    for raw in GARBAGE:
        response = api(method, path, raw=raw)
        assert 400 <= response.status_code < 500, (
            raw[:80],
            response.status_code,
            response.content[:300],
        )
        assert_error(response, response.status_code)
    assert Deployment.objects.get(pk=deployment.pk).state == State.PENDING


@pytest.mark.parametrize(
    "path",
    [
        "/services",
        "/environments",
        "/services/api/releases",
        "/deployments",
        "/strategies/validate",
    ],
)
def test_a_missing_or_null_body_is_a_422_where_a_body_is_required(api, target, path):
    response = api.post(path, raw=b"")

    error = assert_error(response, 422, "invalid_request")
    assert error["details"]["errors"] == [{"path": "", "message": "a JSON body is required"}]
    assert error_paths(api.post(path, raw=b"null")) == [""]


def test_validation_errors_name_each_bad_field_by_path(api, target):
    response = api.post(
        "/deployments",
        {"service": "api", "environment": 3, "strategy": "fast", "extra": True},
    )

    error = assert_error(response, 422, "invalid_request")
    assert sorted(error_paths(response)) == ["environment", "extra", "strategy", "version"]
    assert "environment" in error["message"] or "version" in error["message"]


def test_malformed_json_is_a_400_invalid_request(api):
    error = assert_error(api.post("/services", raw=b"{'slug': 'x'}"), 400, "invalid_request")

    assert "could not be read as JSON" in error["message"]


def test_unicode_where_text_is_free_is_accepted(api, target):
    response = api.post(
        "/services/api/releases",
        {"version": "1.0.0", "notes": "Grüße, 世界 🚀", "artifact": {"sample": {"name": "ünï"}}},
    )

    assert response.status_code == 201
    assert response.json()["notes"] == "Grüße, 世界 🚀"


def test_a_garbage_forwarded_for_header_does_not_break_the_audit(api, service):
    response = api.post("/services", {"slug": "web"}, headers={"X-Forwarded-For": "not-an-ip, 1"})

    assert response.status_code == 201
    assert AuditEvent.objects.get(action="service.create").source_address == "127.0.0.1"


def test_a_forwarded_for_header_is_ignored_unless_a_proxy_is_trusted(api, service, settings):
    api.post("/services", {"slug": "web"}, headers={"X-Forwarded-For": "203.0.113.9"})
    assert AuditEvent.objects.get(action="service.create").source_address == "127.0.0.1"
    settings.TRUST_X_FORWARDED_FOR = True
    api.post("/services", {"slug": "shop"}, headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.1"})
    audit = AuditEvent.objects.filter(action="service.create").order_by("-id").first()
    assert audit.source_address == "203.0.113.9"
