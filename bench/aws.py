"""AWS providers against a moto_server process, through the reconcile loop run in this process.

    .venv/bin/python bench/aws.py [--runs 20]

Needs DATABASE_URL to point at Postgres (a database named <name>_awsbench is created beside it)
and REDIS_URL (the live events go there). Starts moto_server on a free loopback port and builds an
ALB + ECS world and a Lambda function in it (tests/integrations/aws/moto.py). Then, per provider,
N times (ECS twice: a service per slot, and task-set mode, a task set per slot under one EXTERNAL
service): a canary at 50% waiting for promotion, an abort (``releases.actions.abort``, what the API
calls), and the ticks a worker would run at once; prints the time from the abort action returning
to the 100%-stable routing written to AWS (ModifyListener / UpdateAlias answered), p50/p99 over N,
and the AWS calls each kind of tick makes (forward, paused, rollback), by operation. The Celery
hop (a worker picking up the priority tick, ~ms on loopback) is not in these figures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _database() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("set DATABASE_URL to a Postgres server (postgres://postgres@127.0.0.1:5432/x)")
    parts = urlsplit(url)
    name = parts.path.lstrip("/") + "_awsbench"
    host = ["-h", parts.hostname or "127.0.0.1", "-U", parts.username or "postgres"]
    subprocess.run(["dropdb", "--if-exists", *host, name], check=False)
    subprocess.run(["createdb", *host, name], check=True)
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    _database()
    os.environ.setdefault("SECRET_KEY", "bench-only-secret")
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    os.environ.update(AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "switchyard.settings")
    from tests.integrations.aws.moto import MotoServer

    moto = MotoServer(ROOT / "var" / "bench" / "moto-server.log").start()
    os.environ["SWITCHYARD_AWS_ENDPOINT_URL"] = moto.url
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        run(moto, args.runs)
    finally:
        moto.stop()


def run(moto, runs: int) -> None:
    from integrations.aws import session
    from integrations.aws.config import options_for, settings_options
    from releases import actions
    from releases.models import State
    from releases.reconcile import tick
    from tests import factories
    from tests.integrations.aws.moto import (
        make_ecs_world,
        make_lambda_world,
        make_taskset_world,
    )

    options = options_for({}, settings_options())
    written: list[float] = []

    def stamp(model, **_):
        if model.name in ("ModifyListener", "UpdateAlias"):
            written.append(time.perf_counter())

    for name in ("elbv2", "lambda"):
        session.client(name, options).meta.events.register("after-call", stamp)
    ecs_world = make_ecs_world(moto)
    taskset_world = make_taskset_world(moto, name="tsapi", cluster="ts")
    lambda_world = make_lambda_world(moto)
    env = factories.make_environment("prod")
    image = lambda v: {"image": f"example/api:{v}"}  # noqa: E731
    kinds = {  # what is measured: (provider, target config, a release's artifact)
        "aws-ecs": ("aws-ecs", ecs_world.config(), image),
        "aws-ecs task sets": ("aws-ecs", taskset_world.config(), image),
        "aws-lambda": ("aws-lambda", lambda_world.config(), lambda v: lambda_world.upload(moto, v)),
    }
    for label, (provider, config, artifact) in kinds.items():
        service = factories.make_service(label.replace("aws-", "").replace(" ", "-"))
        target = factories.make_target(service, env, provider=provider, config=config)
        calls: dict[str, list[Counter]] = {"forward": [], "paused": [], "rollback": []}
        latencies: list[float] = []

        def deploy(version, strategy, target=target, artifact=artifact, service=service):
            factories.make_release(service, version, artifact=artifact(version))
            d, _ = actions.start_deployment(
                factories.api_actor(),
                service=service,
                environment=env,
                version=version,
                strategy=strategy,
            )
            return d

        def tick_until(d, done, calls=calls):
            for _ in range(200):
                d.refresh_from_db()
                kind = {"rolling_back": "rollback", "paused": "paused"}.get(d.state, "forward")
                with session.journal() as journal:
                    result = tick.tick(d.pk)
                calls[kind].append(Counter(name for name, _ in journal))
                d.refresh_from_db()
                if done(d):
                    return d
                time.sleep(min(0.05, result.wait or 0.01))
            raise RuntimeError(f"stuck: {d.state} {d.message}")

        tick_until(
            deploy("1.0.0", {"kind": "recreate", "replicas": 2}),
            lambda d: d.state == State.SUCCEEDED,
        )
        spec = {
            "kind": "canary",
            "steps": [{"set_weight": 50}, {"pause": {}}],
            "stable_replicas": 2,
        }
        for i in range(runs):
            d = tick_until(deploy(f"2.0.{i}", spec), lambda d: d.state == State.PAUSED)
            tick_until(d, lambda d: True)  # one tick while paused
            actions.abort(factories.api_actor(), d.pk, reason="bench")
            returned = time.perf_counter()
            written.clear()
            tick_until(d, lambda d: d.state == State.ABORTED)
            latencies.append(written[0] - returned)
        print(
            f"\n{label}: abort returned -> 100% stable written, {runs} runs: "
            f"p50 {pct(latencies, 0.5) * 1000:.1f} ms, p99 {pct(latencies, 0.99) * 1000:.1f} ms"
        )
        for kind, counters in calls.items():
            if not counters:
                continue
            total = sum(sum(c.values()) for c in counters)
            mean = Counter()
            for c in counters:
                mean.update(c)
            by_op = ", ".join(f"{op} {n / len(counters):.1f}" for op, n in mean.most_common())
            print(
                f"  AWS calls per {kind} tick: {total / len(counters):.1f} "
                f"({len(counters)} ticks: {by_op})"
            )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


if __name__ == "__main__":
    main()
