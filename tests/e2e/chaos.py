"""The chaos run shared by ``tests/e2e/test_chaos.py`` (five deployments, every figure must be
zero) and ``bench/chaos.py`` (twenty, in waves, the figures printed).

On a ``loop_stack`` (its own Redis, a fleet agent, beat with a 1 s sweep, the workers): each
deployment's target gets 1.0.0, traffic starts through every router, then 2.0.0 is deployed on
all at once with the strategy of its kind (:data:`KINDS`) while the workers are SIGKILLed at
random moments (each restarted a moment later) and the Redis is restarted once, while the
deployments are still under way, losing every queued message. The operator commands (an abort,
a promote) are given while it happens, once their canary waits at its pause. :class:`Figures`
says what came of it. The random moments come from ``seed`` (printed, to replay one).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field

from integrations.local.traffic import Traffic, failures
from releases import actions
from releases.models import Deployment, DeploymentEvent, State
from switchyard import processes
from tests import factories
from tests.e2e.test_broker_restart import deploy, finished
from tests.e2e.test_canary import canary
from tests.e2e.test_rolling_deploy import ROLLING, TERMINAL, instance_versions


@dataclass(frozen=True)
class Kind:
    strategy: dict
    ends: str  # the state it must end in
    command: str | None = None  # the operator command it gets, once paused
    batches: int = 0  # a rolling deployment's batch count (each must start exactly once)


KINDS = {
    "rolls": Kind({**ROLLING, "min_ready": "700ms"}, State.SUCCEEDED, batches=4),
    "climbs": Kind(
        canary(
            {"set_weight": 25},
            {"pause": {"duration": "2s"}},
            {"set_weight": 50},
            {"pause": {"duration": "2s"}},
            {"set_weight": 100},
            progress_deadline="120s",
        ),
        State.SUCCEEDED,
    ),
    "aborted": Kind(
        canary({"set_weight": 50}, {"pause": {}}, progress_deadline="120s"),
        State.ABORTED,
        command="abort",
    ),
    "promoted": Kind(
        canary({"set_weight": 30}, {"pause": {}}, {"set_weight": 100}, progress_deadline="120s"),
        State.SUCCEEDED,
        command="promote",
    ),
    "rolls-too": Kind({**ROLLING, "batch_size": 2, "min_ready": "1s"}, State.SUCCEEDED, batches=2),
}


@dataclass
class Figures:
    seed: int
    deployments: int = 0
    kills: int = 0
    redis_restarts: int = 0
    active_at_redis_restart: int = 0  # deployments under way when the Redis went down
    stranded: list[str] = field(default_factory=list)  # never reached a terminal state
    wrong_state: list[str] = field(default_factory=list)  # ended, but not as they should
    repeated_steps: list[str] = field(default_factory=list)  # a step or batch taken twice
    commands: int = 0
    lost_commands: list[str] = field(default_factory=list)  # given, not carried out
    requests: int = 0
    failed_requests: list = field(default_factory=list)
    wrong_versions: list[str] = field(default_factory=list)  # instances not on what they end on

    def add(self, other: Figures) -> Figures:
        for name, value in vars(other).items():
            if name != "seed":
                setattr(self, name, getattr(self, name) + value)
        return self

    def report(self) -> str:
        return "\n".join(
            [
                f"deployments              {self.deployments}",
                f"worker kills (SIGKILL)   {self.kills}",
                f"Redis restarts           {self.redis_restarts} "
                f"({self.active_at_redis_restart} deployments under way at the restarts)",
                f"stranded                 {len(self.stranded)} {self.stranded or ''}",
                f"ended in the wrong state {len(self.wrong_state)} {self.wrong_state or ''}",
                f"repeated steps           {len(self.repeated_steps)} {self.repeated_steps or ''}",
                f"lost commands            {len(self.lost_commands)} of {self.commands} "
                f"{self.lost_commands or ''}",
                f"failed client requests   {len(self.failed_requests)} of {self.requests}",
                f"instances on the wrong version {len(self.wrong_versions)}",
            ]
        )

    @property
    def clean(self) -> bool:
        return not (
            self.stranded
            or self.wrong_state
            or self.repeated_steps
            or self.lost_commands
            or self.failed_requests
            or self.wrong_versions
        )


def steps_of(d) -> list[str]:
    return list(
        DeploymentEvent.objects.filter(deployment=d, kind="step")
        .order_by("id")
        .values_list("message", flat=True)
    )


def _command(name: str, deployment_id: int) -> None:
    do = getattr(actions, name)
    kwargs = {"reason": "chaos"} if name == "abort" else {}
    do(factories.api_actor(), deployment_id, **kwargs)


def run(
    stack,
    plan: dict[str, str],
    *,
    seed: int,
    workers: tuple[str, ...],
    max_kills: int = 8,
    chaos_seconds: float = 75.0,
    redis_restart_at: int = 3,
    rate: float = 25,
    finish_within: float = 180,
) -> Figures:
    """``plan``: service slug -> kind (a key of :data:`KINDS`), one target each."""
    rng = random.Random(seed)
    figures = Figures(seed=seed, deployments=len(plan))
    factories.make_environment("dev", rollback_window=0)  # no warm slots: versions checked below
    targets = {slug: factories.make_target(factories.make_service(slug)) for slug in plan}
    for d in [deploy(t, "1.0.0", ROLLING) for t in targets.values()]:
        assert finished(stack, d, timeout=120).state == State.SUCCEEDED, "the first release"
    for t in targets.values():
        t.refresh_from_db()
    traffic = {slug: Traffic(t.endpoint, rate=rate, threads=2) for slug, t in targets.items()}
    for t in traffic.values():
        t.__enter__()
    try:
        ds = {slug: deploy(targets[slug], "2.0.0", KINDS[plan[slug]].strategy) for slug in plan}
        ids = [d.pk for d in ds.values()]
        pending = {slug for slug in plan if KINDS[plan[slug]].command}
        figures.commands = len(pending)

        def give_commands() -> None:
            paused = set(
                Deployment.objects.filter(
                    pk__in=[ds[s].pk for s in pending], state=State.PAUSED
                ).values_list("pk", flat=True)
            )
            for slug in sorted(pending):
                if ds[slug].pk in paused:
                    _command(KINDS[plan[slug]].command, ds[slug].pk)
                    pending.discard(slug)

        deadline = time.monotonic() + chaos_seconds
        while time.monotonic() < deadline and figures.kills < max_kills:
            if Deployment.objects.filter(pk__in=ids, state__in=TERMINAL).count() == len(ids):
                break
            time.sleep(rng.uniform(0.8, 3.0))
            victim = rng.choice(workers)
            stack.supervisor.kill(victim)  # SIGKILL, pool processes included
            figures.kills += 1
            time.sleep(rng.uniform(0.0, 1.0))
            if figures.kills == redis_restart_at and not figures.redis_restarts:
                figures.active_at_redis_restart = (
                    Deployment.objects.filter(pk__in=ids).exclude(state__in=TERMINAL).count()
                )
                stack.redis.restart()  # every queued and held message is lost
                figures.redis_restarts += 1
            stack.supervisor.start(victim, processes.worker_command(concurrency=2, name=victim))
            if figures.kills >= 2:  # commands given in the middle of it
                give_commands()
        end = time.monotonic() + finish_within
        while time.monotonic() < end:
            give_commands()
            if Deployment.objects.filter(pk__in=ids, state__in=TERMINAL).count() == len(ids):
                break
            dead = stack.supervisor.check()
            assert not dead, f"{dead} exited: see {stack.log_dir}"
            time.sleep(0.2)
        done = {slug: Deployment.objects.get(pk=d.pk) for slug, d in ds.items()}
        versions = {slug: instance_versions(stack, t.key) for slug, t in targets.items()}
    finally:
        for t in traffic.values():
            t.__exit__(None, None, None)
    for slug, d in done.items():
        kind = KINDS[plan[slug]]
        name = f"{slug} ({plan[slug]}, deployment {d.pk})"
        if d.state not in TERMINAL:
            figures.stranded.append(f"{name}: {d.state}")
        elif d.state != kind.ends:
            figures.wrong_state.append(f"{name}: {d.state} ({d.message})")
        if kind.command and (slug in pending or d.state != kind.ends):
            figures.lost_commands.append(f"{kind.command} of {name}")
        steps = steps_of(d)
        figures.repeated_steps += [f"{name}: {s}" for s, n in Counter(steps).items() if n > 1]
        if kind.batches:
            starts = [s.split(":")[0] for s in steps if " started" in s.split(":")[0]]
            expected = [f"batch {n} of {kind.batches} started" for n in range(1, kind.batches + 1)]
            if d.state == State.SUCCEEDED and starts != expected:
                figures.repeated_steps.append(f"{name}: batches {starts}")
        on = "1.0.0" if kind.ends == State.ABORTED else "2.0.0"
        if kind.ends == State.ABORTED:
            if d.weights != {"stable": 100, "canary": 0}:
                figures.wrong_versions.append(f"{name}: weights {d.weights}")
            samples = traffic[slug].samples
            if samples and samples[-1].version != on:
                figures.wrong_versions.append(f"{name}: the last request served {samples[-1]}")
        elif set(versions[slug]) != {on}:
            figures.wrong_versions.append(f"{name}: {versions[slug]}")
        if kind.batches and len(versions[slug]) != kind.strategy["replicas"]:
            figures.wrong_versions.append(f"{name}: {versions[slug]}")
    for t in traffic.values():
        figures.requests += len(t.samples)
        figures.failed_requests += failures(t.samples)
    return figures
