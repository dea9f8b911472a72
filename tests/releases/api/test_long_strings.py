"""No 5xx from a string: every write endpoint, driven with long, unicode and boundary strings in
each of its string fields (and its path and headers), answers 2xx or 4xx -- on Postgres, where a
value longer than its varchar column is an error (SQLite would quietly store it).

The caller is as long-winded as a real one can be: a 150-character username with a
100-character token name, so every derived name (``user (token)``) overflows unless it is cut.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from releases.actors import Actor
from releases.governance import tokens
from releases.models import Channel, Deployment, State
from tests import factories

pytestmark = pytest.mark.django_db

BOUNDARIES = [
    "",
    " ",
    "a" * 63,
    "a" * 64,
    "a" * 65,
    "a" * 100,
    "a" * 101,
    "x" * 128,
    "x" * 129,
    "é" * 150,
    "é" * 151,
    "y" * 200,
    "y" * 201,
    "z" * 2001,
    "z" * 5000,
    "🚀" * 80,
    "\u202eRTL\u202c",
    "e\u0301" * 90,
    "\x00",
    "line\nbreak",
    "0",
    "-1",
    "null",
    "../../etc",
    "%00",
]
STRINGS = st.one_of(
    st.sampled_from(BOUNDARIES),
    st.text(max_size=40),
    st.text(min_size=60, max_size=400),
    st.text(st.characters(codec="utf-8"), min_size=140, max_size=260),
)
LONG_USER = "u" * 150
LONG_TOKEN = "t" * 100


class World:
    def __init__(self):
        self.user = factories.make_user(LONG_USER, superuser=True, password=None)
        self.token = tokens.create(self.user, LONG_TOKEN)[1]
        actor = Actor(user=self.user, channel=Channel.API, via=LONG_TOKEN)
        self.service = factories.make_service("api")
        self.dev, self.prod = factories.make_environment("dev"), factories.make_environment("prod")
        factories.make_policy(self.prod, required_approvals=1)
        self.targets = [factories.make_target(self.service, e) for e in (self.dev, self.prod)]
        factories.make_release(self.service, "1.0.0", actor=actor)
        factories.make_release(self.service, "2.0.0", actor=actor)
        self.deployment = factories.make_deployment(self.targets[0], "1.0.0", actor=actor)
        self.waiting = factories.make_deployment(self.targets[1], "1.0.0", actor=actor)
        later = timezone.now() + timedelta(days=1)  # a freeze that is not in force now
        self.freeze = factories.make_freeze(
            self.dev, name="f", starts_at=later, ends_at=later + timedelta(hours=1)
        )

    def reset(self):
        Deployment.objects.filter(pk=self.deployment.pk).update(state=State.PROGRESSING)
        Deployment.objects.filter(pk=self.waiting.pk).update(state=State.AWAITING_APPROVAL)


def requests(w: World, s: str):
    """Every write endpoint with ``s`` in one place: (name, method, path, body, headers)."""
    d, a = w.deployment.pk, w.waiting.pk
    deploy = {"service": "api", "environment": "dev", "version": "2.0.0"}
    target = {"provider": "local", "config": {}, "strategy": {"kind": "recreate", "replicas": 1}}
    freeze = {
        "name": "n",
        "environment": "dev",
        "reason": "r",
        "kind": "one_off",
        "starts_at": "2030-01-01T00:00:00Z",
        "ends_at": "2030-01-02T00:00:00Z",
    }
    yield from [
        ("service.slug", "POST", "/services", {"slug": s}, {}),
        ("service.name", "POST", "/services", {"slug": "svc", "name": s}, {}),
        ("service.repository", "POST", "/services", {"slug": "svc2", "repository": s}, {}),
        ("service.team", "PATCH", "/services/api", {"team": s}, {}),
        ("service.path", "PATCH", f"/services/{s}", {"team": "x"}, {}),
        ("environment.slug", "POST", "/environments", {"slug": s}, {}),
        ("environment.name", "PATCH", "/environments/dev", {"name": s}, {}),
        ("target.provider", "PUT", "/services/api/targets/dev", {**target, "provider": s}, {}),
        ("target.config", "PUT", "/services/api/targets/dev", {**target, "config": {s: s}}, {}),
        ("target.env", "PUT", f"/services/api/targets/{s}", target, {}),
        ("release.version", "POST", "/services/api/releases", {"version": s}, {}),
        ("release.commit", "POST", "/services/api/releases", {"version": "3", "commit": s}, {}),
        ("release.notes", "POST", "/services/api/releases", {"version": "4", "notes": s}, {}),
        (
            "release.artifact",
            "POST",
            "/services/api/releases",
            {"version": "5", "artifact": {"command": [s]}},
            {},
        ),
        ("deploy.version", "POST", "/deployments", {**deploy, "version": s}, {}),
        ("deploy.service", "POST", "/deployments", {**deploy, "service": s}, {}),
        ("deploy.reason", "POST", "/deployments", {**deploy, "reason": s}, {}),
        ("deploy.override", "POST", "/deployments", {**deploy, "override_freeze": s}, {}),
        ("deploy.key", "POST", "/deployments", deploy, {"Idempotency-Key": s}),
        ("deploy.strategy", "POST", "/deployments", {**deploy, "strategy": {"kind": s}}, {}),
        ("abort.reason", "POST", f"/deployments/{d}/abort", {"reason": s}, {}),
        ("rollback.reason", "POST", f"/deployments/{d}/rollback", {"reason": s}, {}),
        ("approve.comment", "POST", f"/deployments/{a}/approve", {"comment": s}, {}),
        ("approve.override", "POST", f"/deployments/{a}/approve", {"override_freeze": s}, {}),
        ("reject.comment", "POST", f"/deployments/{a}/reject", {"comment": s}, {}),
        (
            "validate",
            "POST",
            "/strategies/validate",
            {"strategy": {"kind": "canary", "steps": [{s: s}]}},
            {},
        ),
        (
            "validate.provider",
            "POST",
            "/strategies/validate",
            {"strategy": {"kind": "recreate"}, "provider": s},
            {},
        ),
        ("policy.role", "PUT", "/environments/dev/policy", {"approver_role": s}, {}),
        ("freeze.name", "POST", "/freezes", {**freeze, "name": s}, {}),
        ("freeze.reason", "POST", "/freezes", {**freeze, "reason": s}, {}),
        ("freeze.timezone", "POST", "/freezes", {**freeze, "timezone": s}, {}),
        ("freeze.cron", "POST", "/freezes", {**freeze, "kind": "cron", "cron": s}, {}),
        ("freeze.patch", "PATCH", f"/freezes/{w.freeze.pk}", {"reason": s}, {}),
        ("role.user", "POST", "/roles", {"user": s, "role": "viewer"}, {}),
        ("role.group", "POST", "/roles", {"group": s, "role": "viewer"}, {}),
        ("role.role", "POST", "/roles", {"user": LONG_USER, "role": s}, {}),
        ("template.name", "POST", "/analysis-templates", {"name": s, "metrics": []}, {}),
        ("template.desc", "PUT", "/analysis-templates/t1", {"description": s, "metrics": []}, {}),
        ("template.path", "PUT", f"/analysis-templates/{s}", {"metrics": []}, {}),
    ]


@pytest.fixture
def world(db):
    return World()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_write_endpoint_answers_5xx_to_any_string(world, data):
    text = data.draw(STRINGS, label="string")
    client = Client()
    for name, method, path, body, headers in requests(world, text):
        world.reset()
        try:
            header_ok = {
                k: v.encode("latin-1", "replace").decode("latin-1") for k, v in headers.items()
            }
            url = "/api/v1" + path.replace("#", "%23").replace("?", "%3F")
            response = client.generic(
                method,
                url,
                data=json.dumps(body),
                content_type="application/json",
                headers={"Authorization": f"Bearer {world.token}", **header_ok},
            )
        except Exception as exc:  # pragma: no cover - the test client reaching a crash
            raise AssertionError(f"{name} with {text!r}: {exc!r}") from exc
        assert response.status_code < 500, (name, text, response.content[:500])


def test_a_long_username_with_a_long_token_name_may_deploy(world):
    """The hole as found: 60 + 95 characters made the actor's name overflow varchar(150)."""
    user = factories.make_user("d" * 60, superuser=True, password=None)
    token = tokens.create(user, "n" * 95)[1]
    Deployment.objects.update(state=State.ABORTED)

    response = Client().post(
        "/api/v1/deployments",
        data=json.dumps({"service": "api", "environment": "dev", "version": "2.0.0"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 201, response.content
    assert response.json()["created_by"].startswith("d" * 60)


def test_a_worker_on_a_host_with_a_long_name_can_claim_a_deployment(world, monkeypatch):
    """A Kubernetes pod's host name can be 253 characters; the lease owner column is 64."""
    from releases import actions
    from releases.reconcile import tick

    monkeypatch.setattr(tick.socket, "gethostname", lambda: "switchyard-worker-" + "p" * 235)
    owner = tick.owner_id()

    claimed = actions.claim(world.deployment.pk, owner)

    assert claimed is not None and claimed.lease_owner == owner
    assert owner.startswith("switchyard-worker-") and owner != tick.owner_id()
