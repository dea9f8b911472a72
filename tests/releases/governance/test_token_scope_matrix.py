"""The permission matrix with the token dimension: persona x the token's scope set x every
command (freeze overrides included) x an unprotected (dev) and a protected (prod) environment,
through the REST API. A command is allowed only when the persona's role allows it AND the token's
scopes do; overriding a freeze and approving are scopes of their own ("write" grants neither).

Each case runs every command in turn and collects what came back, so one failure lists every
cell of that row that is wrong.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from releases.actors import Actor
from releases.governance import tokens
from releases.models import Channel, Deployment, FreezeOverride, FreezeWindow, State
from tests import factories

pytestmark = pytest.mark.django_db

PERSONAS = ["superuser", "admin", "approver", "deployer", "viewer", "outsider"]
RANK = {"outsider": 0, "viewer": 1, "deployer": 2, "approver": 3, "admin": 4, "superuser": 5}
SCOPE_SETS = {
    "full": [],
    "write": ["write"],
    "read": ["read"],
    "ci": list(tokens.CI_SCOPES),
    "approve": ["deployment.approve"],
    "write+override": ["write", "deployment.override_freeze"],
    "approve+override": ["deployment.approve", "deployment.override_freeze"],
}
OPERATE = "deployment.operate"
# command -> (the least role, the scopes it needs, the state its deployment is put in first)
COMMANDS = {
    "create": ("deployer", {"deployment.create"}, None),
    "override_freeze": ("admin", {"deployment.create", "deployment.override_freeze"}, None),
    "promote": ("deployer", {OPERATE}, State.PROGRESSING),
    "pause": ("deployer", {OPERATE}, State.PROGRESSING),
    "resume": ("deployer", {OPERATE}, State.PAUSED),
    "abort": ("deployer", {OPERATE}, State.PROGRESSING),
    "rollback": ("deployer", {OPERATE}, State.PROGRESSING),
    "retry": ("deployer", {"deployment.create"}, State.ABORTED),
    "approve": ("approver", {"deployment.approve"}, State.AWAITING_APPROVAL),
    "reject": ("approver", {"deployment.approve"}, State.AWAITING_APPROVAL),
    "approve_override": (
        "admin",
        {"deployment.approve", "deployment.override_freeze"},
        State.AWAITING_APPROVAL,
    ),
}
# what "write" grants of the narrow scopes
WRITE_GRANTS = {"release.create", "deployment.create", OPERATE}


def scopes_allow(scopes: list[str], needed: set[str]) -> bool:
    if not scopes:
        return True
    granted = set(scopes) | (WRITE_GRANTS if "write" in scopes else set())
    return needed <= granted


class World:
    def __init__(self):
        self.owner = factories.make_user("owner", superuser=True, password=None)
        self.service = factories.make_service("api")
        self.env = {slug: factories.make_environment(slug) for slug in ("dev", "prod")}
        factories.make_policy(self.env["prod"], required_approvals=1)
        self.target = {s: factories.make_target(self.service, e) for s, e in self.env.items()}
        self.users = {"superuser": factories.make_user("root", superuser=True, password=None)}
        for persona in PERSONAS[1:]:
            user = factories.make_user(f"p-{persona}", superuser=False, password=None)
            if persona != "outsider":
                for env in self.env.values():
                    factories.grant(user, persona, env)
            self.users[persona] = user
        owner = Actor(user=self.owner, channel=Channel.API, via="tests")
        factories.make_release(self.service, "1.0.0", actor=owner)
        factories.make_release(self.service, "2.0.0", actor=owner)
        self.owner_actor = owner

    def clear(self, env: str) -> None:
        """Nothing active on the target, no freeze in force."""
        Deployment.objects.filter(target=self.target[env]).exclude(
            state__in=[State.ABORTED, State.SUCCEEDED]
        ).update(state=State.ABORTED)
        FreezeWindow.objects.all().delete()

    def deployment(self, env: str, state) -> Deployment:
        self.clear(env)
        d = factories.make_deployment(self.target[env], "1.0.0", actor=self.owner_actor)
        Deployment.objects.filter(pk=d.pk).update(state=state)
        return d


def call(method, path, body=None, *, token):
    return Client().generic(
        method,
        "/api/v1" + path,
        data=json.dumps(body) if body is not None else "",
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def run(world: World, command: str, env: str, token: str):
    """Do ``command`` in ``env`` with ``token``: (status, what it should be when allowed)."""
    body = {"service": "api", "environment": env, "version": "2.0.0"}
    if command in ("create", "override_freeze"):
        world.clear(env)
        if command == "override_freeze":
            factories.make_freeze(world.env[env], name="Code freeze")
            body["override_freeze"] = "hotfix"
        return call("POST", "/deployments", body, token=token).status_code, 201
    state = COMMANDS[command][2]
    if env == "dev" and state == State.AWAITING_APPROVAL:
        d = world.deployment(env, State.PENDING)  # dev is not protected: nothing to approve
        allowed = 409
    else:
        d = world.deployment(env, state)
        allowed = 201 if command == "retry" else 202
    verb, payload = command, None
    if command == "approve_override":
        factories.make_freeze(world.env[env], name="Code freeze")
        verb, payload = "approve", {"override_freeze": "hotfix"}
    return call("POST", f"/deployments/{d.pk}/{verb}", payload, token=token).status_code, allowed


@pytest.mark.parametrize("env", ["dev", "prod"])
@pytest.mark.parametrize("scope_set", sorted(SCOPE_SETS))
@pytest.mark.parametrize("persona", PERSONAS)
def test_every_command_needs_the_role_and_the_tokens_scope(persona, scope_set, env):
    world = World()
    scopes = SCOPE_SETS[scope_set]
    token = tokens.create(world.users[persona], "matrix", scopes=scopes)[1]

    wrong = []
    for command, (least, needed, _state) in COMMANDS.items():
        if command == "approve_override" and env == "dev":
            continue  # nothing awaits an approval in dev: the override is never reached
        status, allowed = run(world, command, env, token)
        if persona == "outsider":
            expected = 404
        elif RANK[persona] < RANK[least] or not scopes_allow(scopes, needed):
            expected = 403
        else:
            expected = allowed
        if status != expected:
            wrong.append(f"{command}: {status}, expected {expected}")

    assert wrong == []


def test_a_ci_token_of_an_admin_cannot_override_a_freeze(db):
    """The hole as found: an admin's CI-scoped token got 201 and a recorded override."""
    world = World()
    factories.make_freeze(world.env["prod"], name="Code freeze")
    token = tokens.create(world.users["superuser"], "ci", scopes=list(tokens.CI_SCOPES))[1]
    body = {"service": "api", "environment": "prod", "version": "2.0.0"}

    response = call("POST", "/deployments", {**body, "override_freeze": "hotfix"}, token=token)

    assert response.status_code == 403, response.content
    assert response.json()["details"]["narrow_scope"] == "deployment.override_freeze"
    assert "Code freeze" in response.json()["message"]
    assert not FreezeOverride.objects.exists()


def test_a_config_token_configures_but_does_not_deploy(db):
    """The 'config' scope allowed nothing at all: no action was mapped to it."""
    world = World()
    token = tokens.create(world.users["superuser"], "terraform", scopes=["config"])[1]

    patched = call("PATCH", "/environments/dev", {"name": "Development"}, token=token)
    body = {"service": "api", "environment": "dev", "version": "2.0.0"}
    deployed = call("POST", "/deployments", body, token=token)

    assert patched.status_code == 200, patched.content
    assert deployed.status_code == 403
