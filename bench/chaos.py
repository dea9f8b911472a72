"""Chaos over twenty deployments: the run of ``tests/e2e/test_chaos.py`` (``tests/e2e/chaos.py``:
random SIGKILLs of the Celery workers, one Redis restart mid-rollout, an abort and a promote given
in the middle of it, traffic through every router), in waves of one deployment of each kind.

    .venv/bin/python bench/chaos.py [--deployments 20] [--seed N] [--max-kills 8]

Uses DATABASE_URL (a fresh database named <name>_bench beside it, as bench/harness.py does) or a
SQLite file; the reconcile loop runs on ``tests/e2e/loop_stack.py``: its own redis-server on a
free loopback port (restarted once per wave; never the machine's shared one), a fleet agent, beat
with a 1 s sweep and two workers. Prints, per wave and in all: deployments, kills, Redis
restarts, stranded, repeated steps, lost commands, failed client requests.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, _environment  # noqa: E402

WORKERS = ("worker-a", "worker-b")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deployments", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max-kills", type=int, default=8, help="per wave")
    parser.add_argument("--chaos-seconds", type=float, default=75.0, help="per wave")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)

    var = ROOT / "var" / "bench" / "chaos"
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    env, embedded = _environment(var)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "switchyard.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from tests.e2e import chaos
    from tests.e2e.loop_stack import loop_stack

    call_command("migrate", verbosity=0)
    kinds = list(chaos.KINDS)
    waves = -(-args.deployments // len(kinds))
    total = chaos.Figures(seed=seed)
    started = time.monotonic()
    print(f"chaos: {args.deployments} deployments in {waves} waves, seed {seed}", flush=True)
    try:
        with loop_stack(settings, workers=WORKERS, log_name="bench-chaos") as stack:
            left = args.deployments
            for wave in range(1, waves + 1):
                plan = {f"w{wave}-{kind}": kind for kind in kinds[: min(left, len(kinds))]}
                left -= len(plan)
                figures = chaos.run(
                    stack,
                    plan,
                    seed=seed + wave,
                    workers=WORKERS,
                    max_kills=args.max_kills,
                    chaos_seconds=args.chaos_seconds,
                )
                print(f"\nwave {wave} (seed {seed + wave}):\n{figures.report()}", flush=True)
                total.add(figures)
    finally:
        if embedded is not None:
            embedded.stop()
    print(f"\nin all ({time.monotonic() - started:.0f}s, logs in {stack.log_dir}):")
    print(total.report())
    return 0 if total.clean else 1


if __name__ == "__main__":
    sys.exit(main())
