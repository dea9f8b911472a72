"""Notification figures: what a delivery costs, how long an event takes to reach the receiver,
and what notifications cost a rollback when the receiver hangs.

    .venv/bin/python bench/notify.py [--count 200] [--rollbacks 5] [--deployments 4]

1. **Transport call** (in this process): p50/p99 of one send -- render, sign, HTTP over
   loopback -- through the real ``slack_sdk`` against a loopback fake of Slack's Web API, and a
   Standard Webhooks signed POST to a loopback receiver.
2. **Event -> message delivered**, end to end on a real stack (bench/harness.py's pieces: fresh
   database, fleet agent, beat, web, a rollout worker ``-Q default``, ``-Q priority`` and a
   notify worker ``-Q notify -c 2``): canaries run to success while a webhook channel (loopback
   receiver) and a Slack bot channel (loopback fake of the Web API) hear every moment; per
   delivery, ``sent_at - event_at`` from the delivery log (the event's commit -> the receiver's
   answer, through fan-out, the outbox and the notify worker).
3. **A rollback's latency**, no notifications vs every moment to receivers that hang (a webhook,
   a Teams webhook and a Slack incoming webhook on a loopback server that accepts and never
   answers): the rollback API call returns -> the first moment after which every new request is
   served by the stable release (open-loop traffic through the router). The two must be equal:
   deliveries run on the notify worker only.

The slow and dead receivers are loopback fakes: Slack and Teams cannot be reached from here.
Uses DATABASE_URL / REDIS_URL (a ``<name>_bench`` database is created beside it).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    FAST_HEALTH,
    PAUSED_CANARY,
    RECREATE,
    Api,
    _environment,
    bootstrap,
    command_latency,
    percentile,
    start_fleet,
    start_web,
)
from integrations.notify.base import Notice  # noqa: E402
from integrations.notify.webhook.transport import new_secret  # noqa: E402
from switchyard import processes  # noqa: E402
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
LADDER = {
    "kind": "canary",
    "stable_replicas": 1,
    "steps": [{"set_weight": 25}, {"set_weight": 50}, {"set_weight": 100}],
    "health": FAST_HEALTH,
}
HANG = 30.0  # seconds the dead receiver holds each request (the notify timeout is 5 s)


def timed(fn, count: int) -> list[float]:
    out = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def report(name: str, ms: list[float], unit: str = "ms") -> None:
    print(
        f"  {name:<50} p50 {percentile(ms, 0.5):8.2f} {unit}   p99 {percentile(ms, 0.99):8.2f} "
        f"{unit}   (n={len(ms)})",
        flush=True,
    )


def transport_calls(count: int) -> None:
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "switchyard.settings")
    import django

    django.setup()
    from integrations.notify import registry

    print("1. transport call, in process (loopback receivers)", flush=True)
    slack = FakeSlack()
    bot = registry.build(
        "slack", {"channel": "C1"}, {"bot_token": FakeSlack.TOKEN}, base_url=slack.api_url
    )
    ref = bot.send(NOTICE)
    report("slack chat.postMessage (slack_sdk)", timed(lambda: bot.send(NOTICE), count))
    report("slack chat.update (slack_sdk)", timed(lambda: bot.send(NOTICE, ref=ref), count))
    slack.stop()
    receiver = Receiver()
    hook = registry.build("webhook", {"url": receiver.url}, {"signing_secret": new_secret()})
    report("webhook, Standard Webhooks signed", timed(lambda: hook.send(NOTICE), count))
    receiver.stop()


@contextmanager
def stack(slack_api_url: str):
    var = ROOT / "var" / "bench" / "notify"
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    env, redis = _environment(var)
    env["SLACK_API_URL"] = slack_api_url
    env["NOTIFY_TIMEOUT_SECONDS"] = "5"
    supervisor = processes.Supervisor(env=env, log_dir=var / "logs")
    try:
        token = bootstrap(env)
        start_fleet(supervisor, env)
        for name, queues, concurrency in (
            ("worker", "default", 2),
            ("worker-priority", "priority", 1),
            ("worker-notify", "notify", 2),
        ):
            supervisor.start(
                name, processes.worker_command(concurrency=concurrency, queues=queues, name=name)
            )
        supervisor.start("beat", processes.beat_command(var / "beat-schedule"))
        base = start_web(supervisor)
        print(f"   stack up: {base} (logs in {var / 'logs'})", flush=True)
        yield Api(base, token)
    finally:
        supervisor.stop()
        if redis is not None:
            redis.stop()


def service(api: Api, slug: str) -> str:
    api("POST", "/services", {"slug": slug, "name": slug})
    api("PUT", f"/services/{slug}/targets/prod", {"provider": "local", "config": {}})
    for version in ("1.0.0", "2.0.0", "3.0.0"):
        body = {"version": version, "artifact": {"sample": {"latency_ms": 2}}}
        api("POST", f"/services/{slug}/releases", body)
    return slug


def rollback_latency(api: Api, slug: str, deployment_id: int) -> tuple[float, int]:
    latency, failed, final = command_latency(api, slug, deployment_id, "rollback")
    assert final["state"] == "rolled_back", final
    return latency, failed


def rollbacks(api: Api, slugs: list[str]) -> tuple[list[float], int]:
    canaries = [api.deploy(s, "prod", "2.0.0", PAUSED_CANARY) for s in slugs]
    for d in canaries:
        api.wait(d["id"], states={"paused"}, timeout=120)
    out, failed = [], 0
    for slug, d in zip(slugs, canaries, strict=True):
        latency, lost = rollback_latency(api, slug, d["id"])
        out.append(latency * 1000)
        failed += lost
    return out, failed


def channel(api: Api, name: str, kind: str, config: dict, secrets: dict) -> int:
    body = {"name": name, "kind": kind, "config": config, "secrets": secrets}
    created = api("POST", "/notifications/channels", body)
    api("POST", "/notifications/rules", {"channel": created["id"]})
    return created["id"]


def _at(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def end_to_end(rollbacks_each: int, deployments: int) -> None:
    slack, receiver, hanging = FakeSlack(), Receiver(), Receiver()
    hanging.hang = HANG
    try:
        with stack(slack.api_url) as api:
            api("POST", "/environments", {"slug": "prod", "name": "Prod", "order": 1})
            quiet = [service(api, f"quiet-{n}") for n in range(rollbacks_each)]
            loud = [service(api, f"loud-{n}") for n in range(rollbacks_each)]
            ladder = [service(api, f"ladder-{n}") for n in range(deployments)]
            firsts = [api.deploy(s, "prod", "1.0.0", RECREATE) for s in quiet + loud + ladder]
            for d in firsts:
                assert api.wait(d["id"], timeout=300)["state"] == "succeeded", d

            print("2. event -> message delivered (event committed -> receiver answered)")
            hook = channel(
                api, "hook", "webhook", {"url": receiver.url}, {"signing_secret": new_secret()}
            )
            bot = channel(api, "slack", "slack", {"channel": "C1"}, {"bot_token": FakeSlack.TOKEN})
            runs = [api.deploy(s, "prod", "2.0.0", LADDER) for s in ladder]
            for d in runs:
                assert api.wait(d["id"], timeout=180)["state"] == "succeeded", d
            time.sleep(3)  # the last deliveries land
            for name, pk in (("webhook (Standard Webhooks)", hook), ("slack bot (slack_sdk)", bot)):
                rows = api("GET", f"/notifications/channels/{pk}/deliveries?limit=500")
                sent = [r for r in rows if r["status"] == "sent" and r["event_at"]]
                ms = [1000 * (_at(r["sent_at"]) - _at(r["event_at"])) for r in sent]
                fan = [1000 * (_at(r["created_at"]) - _at(r["event_at"])) for r in sent]
                send = [1000 * (_at(r["sent_at"]) - _at(r["created_at"])) for r in sent]
                others = {r["status"] for r in rows} - {"sent"}
                report(f"{name}, {len(runs)} canaries", ms)
                report("   of which event -> outbox row (fan-out)", fan)
                report("   of which outbox row -> receiver answered", send)
                if others:
                    print(f"     (also: {sorted(others)}: unchanged Slack updates are skipped)")
            print(f"  slack: {len(slack.messages)} messages for {len(runs)} deployments")
            for c in (hook, bot):
                api.client.delete(f"/notifications/channels/{c}").raise_for_status()  # 204
            print("3. rollback latency (API call returned -> every new request on 1.0.0)")
            none, failed_none = rollbacks(api, quiet)
            report("no notification channels", none)
            dead = [
                channel(
                    api,
                    "dead-webhook",
                    "webhook",
                    {"url": hanging.url},
                    {"signing_secret": new_secret()},
                ),
                channel(api, "dead-teams", "teams", {}, {"webhook_url": hanging.url + "/teams"}),
                channel(api, "dead-slack", "slack", {}, {"webhook_url": hanging.url + "/slack"}),
            ]
            hung, failed_hung = rollbacks(api, loud)
            report(f"3 channels to a receiver hanging {HANG:g} s", hung)
            backlog = sum(
                1
                for c in dead
                for row in api("GET", f"/notifications/channels/{c}/deliveries?limit=500")
                if row["status"] in ("pending", "sending")
            )
            print(
                f"  failed requests: {failed_none} without, {failed_hung} with; deliveries to the "
                f"dead receiver still pending or in flight at the end: {backlog}",
                flush=True,
            )
            for c in dead:
                api.client.delete(f"/notifications/channels/{c}").raise_for_status()  # 204

    finally:
        for r in (slack, receiver, hanging):
            r.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="transport calls per figure")
    parser.add_argument("--rollbacks", type=int, default=5, help="rollbacks per configuration")
    parser.add_argument("--deployments", type=int, default=4, help="canaries heard end to end")
    parser.add_argument("--skip-stack", action="store_true", help="only the transport calls")
    args = parser.parse_args()
    transport_calls(args.count)
    if not args.skip_stack:
        end_to_end(args.rollbacks, args.deployments)


if __name__ == "__main__":
    main()
