"""Seed data for ``make demo``: two services in dev/staging/prod on the local fleet."""

from __future__ import annotations

import hashlib

from django.contrib.auth import get_user_model
from django.db import transaction

from releases import actions
from releases.actors import Actor
from releases.errors import Conflict
from releases.models import Channel, Deployment, Environment, Service, Target

DEMO_USER = "admin"
DEMO_PASSWORD = "switchyard"
SERVICES = [("api", "Payments API", "payments"), ("web", "Storefront", "storefront")]
ENVIRONMENTS = [("dev", "Development", 10), ("staging", "Staging", 20), ("prod", "Production", 30)]
ROUTER_BASE_PORT = 9100
FAST_HEALTH = {"path": "/health", "interval": "250ms", "healthy_threshold": 2}


def router_port(service_index: int, env_index: int) -> int:
    return ROUTER_BASE_PORT + service_index * 10 + env_index + 1


@transaction.atomic
def seed() -> list[Target]:
    User = get_user_model()
    user = User.objects.filter(username=DEMO_USER).first()
    if user is None:
        user = User.objects.create_superuser(DEMO_USER, "admin@example.com", DEMO_PASSWORD)
    actor = Actor(user=user, channel=Channel.SYSTEM, via="demo seed")
    envs = []
    for slug, name, order in ENVIRONMENTS:
        env, _ = Environment.objects.get_or_create(
            slug=slug, defaults={"name": name, "order": order}
        )
        envs.append(env)
    targets = []
    for s_index, (slug, name, team) in enumerate(SERVICES):
        service, _ = Service.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "team": team,
                "default_strategy": {
                    "kind": "rolling",
                    "replicas": 2,
                    "batch_size": 1,
                    "max_surge": 1,
                    "max_unavailable": 0,
                    "min_ready": "1s",
                    "health": FAST_HEALTH,
                },
            },
        )
        for version, notes in (("1.0.0", "first release"), ("1.1.0", "faster checkout")):
            actions.create_release(
                actor,
                service,
                version=version,
                artifact={"sample": {"latency_ms": 20}},
                commit=hashlib.sha1(f"{slug}{version}".encode()).hexdigest()[:7],
                notes=notes,
            )
        for e_index, env in enumerate(envs):
            target, _ = Target.objects.get_or_create(
                service=service,
                environment=env,
                defaults={
                    "provider": "local",
                    "config": {"router_port": router_port(s_index, e_index)},
                },
            )
            targets.append(target)
            if (
                target.stable_release_id is None
                and not Deployment.objects.filter(target=target).exists()
            ):
                try:
                    actions.start_deployment(
                        actor,
                        service=service,
                        environment=env,
                        version="1.0.0",
                        reason="initial demo rollout",
                    )
                except Conflict:
                    pass
    return targets
