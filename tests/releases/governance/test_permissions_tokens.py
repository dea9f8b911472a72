"""API tokens under governance: a revoked or expired token is refused; a token's scopes
(actions), environments and services narrow what its user may do -- never widen it."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from releases.errors import InvalidRequest
from releases.governance import tokens
from releases.models import ApiToken, AuditEvent, Channel, State
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(service, dev, prod):
    factories.make_environment("staging")
    for env in ("dev", "staging", "prod"):
        factories.make_target(service, factories.make_environment(env))
    factories.make_release(service, "1.0.0")
    return service


def call(method, path, body=None, *, token):
    return Client().generic(
        method,
        "/api/v1" + path,
        data=json.dumps(body) if body is not None else "",
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def deploy(token, env="dev", version="1.0.0"):
    body = {"service": "api", "environment": env, "version": version}
    return call("POST", "/deployments", body, token=token)


def test_a_revoked_token_is_refused(world, admin):
    row, token = tokens.create(admin, "ci")
    assert call("GET", "/services", token=token).status_code == 200

    tokens.revoke(row.prefix)
    response = call("GET", "/services", token=token)

    assert response.status_code == 401
    assert "revoked" in response.json()["message"]


def test_an_expired_token_is_refused(world, admin):
    row, token = tokens.create(admin, "ci", expires_at=timezone.now() + timedelta(days=1))
    ApiToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = call("GET", "/services", token=token)

    assert response.status_code == 401 and "expired" in response.json()["message"]


def test_a_ci_token_may_release_and_deploy_to_dev_and_staging_but_not_approve(world, admin, prod):
    factories.make_policy(prod, required_approvals=1)
    _, token = tokens.create(admin, "ci", scopes=tokens.CI_SCOPES, environments=["dev", "staging"])

    release = call(
        "POST", "/services/api/releases", {"version": "1.1.0", "artifact": {}}, token=token
    )
    to_dev = deploy(token, "dev", "1.1.0")
    to_prod = deploy(token, "prod", "1.1.0")

    assert release.status_code == 201
    assert to_dev.status_code == 201
    assert to_prod.status_code == 403 and "limited to the environments" in to_prod.json()["message"]
    assert call("POST", f"/deployments/{to_dev.json()['id']}/pause", token=token).status_code == 202
    # someone else's deployment to prod waits for approval: the CI token may see it, not approve
    waiting = deploy(tokens.create(factories.make_user("root"), "cli")[1], "prod")
    assert waiting.json()["state"] == State.AWAITING_APPROVAL
    approve = call("POST", f"/deployments/{waiting.json()['id']}/approve", token=token)
    assert approve.status_code == 403
    assert approve.json()["details"]["narrow_scope"] == "deployment.approve"


def test_a_token_never_grants_more_than_its_users_roles(world, dev):
    viewer = factories.make_persona("viewer", dev)
    _, token = tokens.create(viewer, "wishful", scopes=["write"])

    assert call("GET", "/deployments", token=token).status_code == 200
    response = deploy(token)
    assert response.status_code == 403 and "needs the deployer role" in response.json()["message"]


def test_a_token_limited_to_one_service_sees_only_that_service(world, admin, dev):
    web = factories.make_service("web")
    factories.make_target(web, dev)
    _, token = tokens.create(admin, "api-only", services=["api"])

    services = call("GET", "/services", token=token).json()["items"]
    refused = call("POST", "/services/web/releases", {"version": "9"}, token=token)

    assert [s["slug"] for s in services] == ["api"]
    assert refused.status_code == 403 and "limited to the services" in refused.json()["message"]


def test_an_environment_limited_token_may_not_configure_everything(world, admin):
    _, token = tokens.create(admin, "dev-admin", environments=["dev"])

    assert call("PATCH", "/environments/dev", {"name": "Dev"}, token=token).status_code == 200
    assert call("PATCH", "/environments/prod", {"name": "P"}, token=token).status_code == 403
    assert call("PATCH", "/services/api", {"team": "x"}, token=token).status_code == 403


def test_a_read_token_reads_everything_its_user_sees(world, admin):
    _, token = tokens.create(admin, "tv", scopes=["read"])

    assert call("GET", "/deployments", token=token).status_code == 200
    assert deploy(token).status_code == 403


def test_token_limits_must_name_existing_places(world, admin):
    with pytest.raises(InvalidRequest, match="no environment 'qa'"):
        tokens.create(admin, "ci", environments=["qa"])
    with pytest.raises(InvalidRequest, match="Unknown scope"):
        tokens.create(admin, "ci", scopes=["deployment.everything"])


def test_calls_with_a_token_are_audited_on_the_api_channel_with_its_name(world, admin):
    _, token = tokens.create(admin, "ci", scopes=["deployment.create"])

    assert deploy(token).status_code == 201

    event = AuditEvent.objects.get(action="deployment.create")
    assert (event.channel, event.actor_name) == (Channel.API, "admin (ci)")


# --- the tokens page --------------------------------------------------------------------------


def test_the_tokens_page_creates_shows_once_and_revokes(world, dev):
    user = factories.make_persona("deployer", dev)
    client = Client()
    client.force_login(user)

    created = client.post(
        "/tokens/",
        {"name": "ci", "scopes": ["release.create", "deployment.create"], "environments": ["dev"]},
    )
    body = created.content.decode()
    row = ApiToken.objects.get(user=user)
    secret = body.split('<code class="secret">')[1].split("</code>")[0]

    assert created.status_code == 200 and secret.startswith(f"swy_{row.prefix}_")
    assert (row.scopes, row.environments) == (["deployment.create", "release.create"], ["dev"])
    assert secret not in client.get("/tokens/").content.decode()  # shown once
    assert deploy(secret).status_code == 201
    call("GET", "/services", token=secret)
    row.refresh_from_db()
    assert row.last_used_at is not None and row.last_used_from == "127.0.0.1"
    page = client.get("/tokens/").content.decode()
    assert "from 127.0.0.1" in page

    revoked = client.post(f"/tokens/{row.prefix}/revoke/")

    assert revoked.status_code == 302
    assert call("GET", "/services", token=secret).status_code == 401
    assert AuditEvent.objects.filter(action="token.revoke", channel=Channel.UI).exists()


def test_nobody_revokes_someone_elses_token_from_the_page(world, admin, dev):
    row, _ = tokens.create(admin, "ci")
    other = factories.make_persona("deployer", dev)
    client = Client()
    client.force_login(other)

    assert client.post(f"/tokens/{row.prefix}/revoke/").status_code == 404
    row.refresh_from_db()
    assert row.revoked_at is None


def test_the_token_command_makes_a_scoped_service_account_token(world, dev):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "token", "create", "--user", "ci-bot", "--service-account", "--name", "ci",
        "--scope", "release.create", "--scope", "deployment.create", "--environment", "dev",
        stdout=out, stderr=err,
    )  # fmt: skip
    token = out.getvalue().strip().splitlines()[-1]
    bot = ApiToken.objects.get(name="ci").user

    assert not bot.has_usable_password()
    factories.grant(bot, "deployer")  # everywhere: the token is what limits it to dev
    assert deploy(token, "dev").status_code == 201
    assert deploy(token, "prod").status_code == 403
