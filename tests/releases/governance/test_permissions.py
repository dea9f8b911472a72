"""The permission matrix: every role x every action x an unprotected (dev) and a protected (prod,
one approval required) environment, through the REST API and through the dashboard, asserting
allowed or denied -- and 404 for outsiders, who must not learn that anything exists.

Roles are held in both environments; who holds what where in finer detail (one environment, one
service, a team) is tests/releases/test_policy.py.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from releases import actions
from releases.actors import Actor
from releases.governance import tokens
from releases.models import Channel, Deployment, DeploymentEvent, State
from tests import factories

pytestmark = pytest.mark.django_db

ROLES = ["superuser", "admin", "approver", "deployer", "viewer", "outsider"]
RANK = {"outsider": 0, "viewer": 1, "deployer": 2, "approver": 3, "admin": 4, "superuser": 5}
ENVIRONMENTS = ["dev", "prod"]  # prod is protected

# action -> (the least role allowed, the state the deployment is put in first)
COMMANDS = {
    "promote": ("deployer", State.PROGRESSING),
    "pause": ("deployer", State.PROGRESSING),
    "resume": ("deployer", State.PAUSED),
    "abort": ("deployer", State.PROGRESSING),
    "rollback": ("deployer", State.PROGRESSING),
    "approve": ("approver", State.AWAITING_APPROVAL),
    "reject": ("approver", State.AWAITING_APPROVAL),
}


class World:
    """api in dev and prod, a release 1.0.0 being deployed to each (by the owner) and a release
    2.0.0 ready, and one user per role, holding it in both environments."""

    def __init__(self):
        # no passwords: hashing one costs more than the rest of a test (they use force_login)
        self.owner = factories.make_user("owner", superuser=True, password=None)
        self.service = factories.make_service("api")
        self.env = {slug: factories.make_environment(slug) for slug in ENVIRONMENTS}
        factories.make_policy(self.env["prod"], required_approvals=1)
        self.target = {
            slug: factories.make_target(self.service, env) for slug, env in self.env.items()
        }
        self.users = {"superuser": factories.make_user("root", superuser=True, password=None)}
        for role in ROLES[1:]:
            user = factories.make_user(role, superuser=False, password=None)
            if role != "outsider":
                for env in self.env.values():
                    factories.grant(user, role, env)
            self.users[role] = user
        factories.make_release(self.service, "2.0.0", actor=self.actor(self.owner))

    def actor(self, user):
        return Actor(user=user, channel=Channel.API, address="127.0.0.1", via="tests")

    def deployment(self, env: str, state: str | None = None) -> Deployment:
        d = factories.make_deployment(self.target[env], "1.0.0", actor=self.actor(self.owner))
        if state is not None:  # the state the action needs (the state machine is tested apart)
            Deployment.objects.filter(pk=d.pk).update(state=state)
            d.refresh_from_db()
        return d

    def token(self, role: str) -> str:
        return tokens.create(self.users[role], f"{role}-token")[1]


@pytest.fixture
def world(db):
    return World()


def api(client, method, path, body=None, *, token):
    return client.generic(
        method,
        "/api/v1" + path,
        data=json.dumps(body) if body is not None else "",
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def expect(role: str, least: str, allowed: int, *, denied: int = 403) -> int:
    if role == "outsider":
        return 404
    return allowed if RANK[role] >= RANK[least] else denied


def web(world, role) -> Client:
    client = Client()
    client.force_login(world.users[role])
    return client


# --- through the API ---------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("role", ROLES)
def test_api_view(world, client, role, env):
    d = world.deployment(env)
    token = world.token(role)

    response = api(client, "GET", f"/deployments/{d.pk}", token=token)
    events = api(client, "GET", f"/deployments/{d.pk}/events", token=token)
    listed = api(client, "GET", "/deployments", token=token).json()["items"]

    assert response.status_code == events.status_code == expect(role, "viewer", 200)
    assert [item["id"] for item in listed] == ([] if role == "outsider" else [d.pk])
    if role == "outsider":
        assert response.json()["message"] == f"There is no deployment {d.pk}."


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted(COMMANDS))
def test_api_operator_commands(world, client, role, env, action):
    least, state = COMMANDS[action]
    if env == "dev" and state == State.AWAITING_APPROVAL:
        state = State.PENDING  # dev is not protected: nothing ever awaits an approval there
    d = world.deployment(env, state)
    events_before = DeploymentEvent.objects.filter(deployment=d).count()

    response = api(client, "POST", f"/deployments/{d.pk}/{action}", token=world.token(role))

    # approving in an unprotected environment: allowed to try, but there is nothing to approve
    allowed = 409 if state == State.PENDING and action in ("approve", "reject") else 202
    assert response.status_code == expect(role, least, allowed), response.content
    changed = DeploymentEvent.objects.filter(deployment=d).count() != events_before
    assert changed is (response.status_code == 202)


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("role", ROLES)
def test_api_create_release(world, client, role, env):
    response = api(
        client,
        "POST",
        "/services/api/releases",
        {"version": f"3.0.{RANK[role]}", "artifact": {"sample": {}}},
        token=world.token(role),
    )

    assert response.status_code == expect(role, "deployer", 201), response.content


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("role", ROLES)
def test_api_start_a_deployment(world, client, role, env):
    response = api(
        client,
        "POST",
        "/deployments",
        {"service": "api", "environment": env, "version": "2.0.0"},
        token=world.token(role),
    )

    assert response.status_code == expect(role, "deployer", 201), response.content
    if response.status_code == 201:  # a protected environment holds it for approval
        expected = State.AWAITING_APPROVAL if env == "prod" else State.PENDING
        assert response.json()["state"] == expected


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("role", ROLES)
def test_api_override_a_freeze(world, client, role, env):
    factories.make_freeze(world.env[env], name="Code freeze")
    body = {"service": "api", "environment": env, "version": "2.0.0"}
    token = world.token(role)

    frozen = api(client, "POST", "/deployments", body, token=token)
    overridden = api(
        client, "POST", "/deployments", {**body, "override_freeze": "hotfix"}, token=token
    )

    assert frozen.status_code == expect(role, "deployer", 409)
    if frozen.status_code == 409:
        assert frozen.json()["code"] == "frozen" and "Code freeze" in frozen.json()["message"]
    assert overridden.status_code == expect(role, "admin", 201), overridden.content


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("role", ROLES)
def test_api_configure_a_target(world, client, role, env):
    response = api(
        client,
        "PUT",
        f"/services/api/targets/{env}",
        {"provider": "local", "config": {}, "strategy": {"kind": "recreate", "replicas": 1}},
        token=world.token(role),
    )

    assert response.status_code == expect(role, "admin", 200), response.content


# --- through the dashboard -------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("role", ROLES)
def test_web_view(world, role, env):
    d = world.deployment(env)
    client = web(world, role)

    page = client.get(f"/deployments/{d.pk}/")
    listing = client.get("/deployments/")

    assert page.status_code == expect(role, "viewer", 200)
    assert (f"/deployments/{d.pk}/" in listing.content.decode()) is (role != "outsider")


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted(COMMANDS))
def test_web_operator_commands(world, role, env, action):
    least, state = COMMANDS[action]
    if env == "dev" and state == State.AWAITING_APPROVAL:
        state = State.PENDING
    d = world.deployment(env, state)
    client = web(world, role)
    nothing_to_approve = state == State.PENDING and action in ("approve", "reject")
    if role != "outsider" and not nothing_to_approve:
        # the button is there: enabled, or disabled saying which role it needs
        page = client.get(f"/deployments/{d.pk}/actions/").content.decode()
        form = page.split(f'data-action="{action}"')[1].split("</form>")[0]
        button = form.split("<button")[1].split(">")[0]
        assert ("disabled" not in button) is (RANK[role] >= RANK[least]), button
        if "disabled" in button:
            assert f"needs the {least} role" in button

    response = client.post(
        f"/deployments/{d.pk}/{action}/",
        {"reason": "matrix"},
        headers={"Accept": "application/json"},
    )

    allowed = 409 if nothing_to_approve else 200
    assert response.status_code == expect(role, least, allowed), response.content


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("role", ROLES)
def test_web_start_a_deployment(world, role, env):
    response = web(world, role).post(
        "/services/api/releases/2.0.0/deploy/", {"environment": env, "reason": "matrix"}
    )

    assert response.status_code == expect(role, "deployer", 302), response.content
    started = Deployment.objects.filter(release__version="2.0.0").first()
    assert (started is not None) is (response.status_code == 302)


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("role", ROLES)
def test_web_override_a_freeze(world, role, env):
    factories.make_freeze(world.env[env], name="Code freeze")
    client = web(world, role)
    url = "/services/api/releases/2.0.0/deploy/"

    frozen = client.post(url, {"environment": env})
    overridden = client.post(url, {"environment": env, "override_freeze": "hotfix"})

    assert frozen.status_code == expect(role, "deployer", 409)
    if frozen.status_code == 409:
        assert "Code freeze" in frozen.content.decode()
    assert overridden.status_code == expect(role, "admin", 302), overridden.content


# --- what outsiders and narrow roles see ---------------------------------------------------------


def test_an_outsider_sees_an_empty_board_and_no_lists(world):
    world.deployment("prod")
    client = web(world, "outsider")

    board = client.get("/").content.decode()
    token = world.token("outsider")
    services = api(Client(), "GET", "/services", token=token).json()["items"]
    environments = api(Client(), "GET", "/environments", token=token).json()["items"]

    assert "1.0.0" not in board
    assert services == [] and environments == []
    assert api(Client(), "GET", "/services/api", token=token).status_code == 404
    assert api(Client(), "GET", "/services/api/releases/2.0.0", token=token).status_code == 404


def test_a_role_in_dev_shows_dev_only(world):
    dev_only = factories.make_persona("dev-deployer", world.env["dev"], role="deployer")
    token = tokens.create(dev_only, "t")[1]
    in_prod = world.deployment("prod")
    client = Client()

    environments = api(client, "GET", "/environments", token=token).json()["items"]
    targets = api(client, "GET", "/services/api/targets", token=token).json()["items"]

    assert [e["slug"] for e in environments] == ["dev"]
    assert [t["environment"] for t in targets] == ["dev"]
    assert api(client, "GET", f"/deployments/{in_prod.pk}", token=token).status_code == 404
    body = {"service": "api", "environment": "prod", "version": "2.0.0"}
    missing = api(client, "POST", "/deployments", body, token=token)
    assert missing.status_code == 404 and "prod" in missing.json()["message"]


def test_the_commands_refuse_the_same_as_the_api(world):
    """Chat-ops and the CLI reach ``releases.actions`` directly: the roles hold there too."""
    d = world.deployment("prod", State.PROGRESSING)

    for role, expected in (("viewer", "Forbidden"), ("outsider", "NotFound")):
        actor = Actor(user=world.users[role], channel=Channel.CHAT)
        with pytest.raises(Exception) as caught:
            actions.pause(actor, d.pk)
        assert type(caught.value).__name__ == expected
    anonymous = Actor(user=None, channel=Channel.CHAT)
    with pytest.raises(Exception) as caught:
        actions.pause(anonymous, d.pk)
    assert type(caught.value).__name__ == "NotFound"
