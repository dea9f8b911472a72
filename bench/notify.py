"""Notification figures: what a delivery costs, and what notifications add to a rollout's path.

    .venv/bin/python bench/notify.py [--count 200]

1. Event -> message delivered, per transport, with the loopback receivers the tests use (a fake
   of Slack's Web API behind the real ``slack_sdk``; a Standard Webhooks receiver): p50/p99 of
   the transport call (render, sign, HTTP over loopback).
2. The hook on a rollout's path: ``releases.queue.enqueue_notify`` (one send_task to Redis after
   commit), p50/p99, with a receiver that hangs: delivery happens on the notify worker, so this
   is all a rollback pays whether the receiver answers or not.
Needs REDIS_URL (the broker the hook sends to).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "switchyard.settings")

import django  # noqa: E402

django.setup()

from bench.harness import percentile  # noqa: E402
from integrations.notify import registry  # noqa: E402
from integrations.notify.base import Notice  # noqa: E402
from integrations.notify.webhook.transport import new_secret  # noqa: E402
from releases import queue  # noqa: E402
from switchyard.celery import app  # noqa: E402,F401 -- the broker send_task uses
from tests.notifications.fakes import FakeSlack, Receiver  # noqa: E402

NOTICE = Notice(
    id="sy_bench",
    trigger="step",
    title="api 1.1.0 → prod: progressing",
    text="step 2 of 4 started: set weight 25%",
    deployment={
        "id": 1,
        "service": "api",
        "environment": "prod",
        "state": "progressing",
        "weights": {"stable": 75, "canary": 25},
        "target_version": "1.1.0",
    },
    actions=("promote", "pause", "abort", "rollback"),
)


def timed(fn, count: int) -> list[float]:
    out = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def report(name: str, ms: list[float]) -> None:
    print(f"{name:<46} p50 {percentile(ms, 0.5):7.2f} ms   p99 {percentile(ms, 0.99):7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    count = parser.parse_args().count

    slack = FakeSlack()
    bot = registry.build(
        "slack", {"channel": "C1"}, {"bot_token": FakeSlack.TOKEN}, base_url=slack.api_url
    )
    ref = bot.send(NOTICE)
    report("slack chat.postMessage (slack_sdk, loopback)", timed(lambda: bot.send(NOTICE), count))
    report(
        "slack chat.update (slack_sdk, loopback)", timed(lambda: bot.send(NOTICE, ref=ref), count)
    )
    slack.stop()

    receiver = Receiver()
    hook = registry.build("webhook", {"url": receiver.url}, {"signing_secret": new_secret()})
    report("webhook, Standard Webhooks signed (loopback)", timed(lambda: hook.send(NOTICE), count))
    receiver.stop()

    hanging = Receiver()
    hanging.hang = 30  # nothing consumes the notify queue here; the receiver would hang anyway
    report(
        "hook on the rollout path: enqueue_notify",
        timed(lambda: queue.enqueue_notify(1, [1]), count),
    )
    hanging.stop()


if __name__ == "__main__":
    main()
