"""Build test data through the same commands the product uses (Zulip style)."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from releases import actions
from releases.actors import Actor
from releases.models import Channel, Environment, Service, Target


def make_user(username="admin", *, superuser=True, password="pw-for-tests"):
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        maker = User.objects.create_superuser if superuser else User.objects.create_user
        user = maker(username=username, email=f"{username}@example.com", password=password)
    return user


def api_actor(user=None) -> Actor:
    return Actor(user=user or make_user(), channel=Channel.API, address="127.0.0.1", via="tests")


def make_service(slug="api", **fields) -> Service:
    fields.setdefault("name", slug.title())
    return Service.objects.get_or_create(slug=slug, defaults=fields)[0]


def make_environment(slug="dev", order=None, **fields) -> Environment:
    if order is None:
        order = {"dev": 10, "staging": 20, "prod": 30}.get(slug, 40)
    fields.setdefault("name", slug.title())
    return Environment.objects.get_or_create(slug=slug, defaults={"order": order, **fields})[0]


def make_target(service=None, environment=None, **fields) -> Target:
    service = service or make_service()
    environment = environment or make_environment()
    fields.setdefault("provider", "local")
    return Target.objects.get_or_create(service=service, environment=environment, defaults=fields)[
        0
    ]


def make_release(service=None, version="1.0.0", artifact=None, actor=None):
    service = service or make_service()
    release, _ = actions.create_release(
        actor or api_actor(), service, version=version, artifact=artifact or {"sample": {}}
    )
    return release


def make_deployment(target=None, version="1.0.0", strategy=None, actor=None):
    target = target or make_target()
    make_release(target.service, version)
    deployment, _ = actions.start_deployment(
        actor or api_actor(),
        service=target.service,
        environment=target.environment,
        version=version,
        strategy=strategy or {"kind": "rolling", "replicas": 2},
        redeploy=True,  # tests deploy 1.0.0 over and over; people must say "redeploy"
    )
    return deployment


# --- governance: personas, roles, policies, freezes -------------------------------------------


def grant(who, role, environment=None, service=None):
    """Give ``who`` (a user or a Group) ``role`` in ``environment`` (None: every one), for
    ``service`` (None: every one)."""
    from django.contrib.auth.models import Group

    from releases.models import RoleBinding

    return RoleBinding.objects.create(
        user=None if isinstance(who, Group) else who,
        group=who if isinstance(who, Group) else None,
        role=role,
        environment=environment,
        service=service,
    )


def make_persona(name, environment=None, service=None, *, role=None):
    """A user who is not a superuser, holding ``role`` (default: the persona's name, for
    deployer / approver / viewer / admin) in ``environment``; "outsider" holds nothing. The
    "admin" persona is the user ``env-admin`` (``admin`` is the superuser of the other tests)."""
    username = "env-admin" if name == "admin" else name
    user = make_user(username, superuser=False, password=None)  # no hashing: fast; force_login
    assert not user.is_superuser, f"{username} is a superuser: pick another persona name"
    role = role or (name if name in ("viewer", "deployer", "approver", "admin") else None)
    if role is not None:
        grant(user, role, environment, service)
    return user


def make_policy(environment, required_approvals=1, **fields):
    from releases.models import EnvironmentPolicy

    policy, _ = EnvironmentPolicy.objects.update_or_create(
        environment=environment, defaults={"required_approvals": required_approvals, **fields}
    )
    return policy


def make_freeze(environment, name="release freeze", reason="quarter close", **fields):
    """A one-off window in force now (unless ``fields`` say otherwise)."""
    from datetime import timedelta

    from django.utils import timezone

    from releases.models import FreezeWindow

    now = timezone.now()
    fields.setdefault("kind", "one_off")
    if fields["kind"] == "one_off":
        fields.setdefault("starts_at", now - timedelta(hours=1))
        fields.setdefault("ends_at", now + timedelta(hours=1))
    window = FreezeWindow(environment=environment, name=name, reason=reason, **fields)
    window.full_clean()
    window.save()
    return window
