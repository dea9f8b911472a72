"""The fleet agent's memory per target and per router stays bounded however long it runs and
however many deployments it sees (docs/retention.md): each bound pushed well past and seen to
hold. The copier test sends real HTTP copies to a real (slow) aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import aiohttp
from aiohttp import web

from integrations.local.mirroring import MAX_IN_FLIGHT, Copier
from integrations.local.stats import RETIRED_KEPT, VERSIONS_KEPT, TargetStats


def test_removed_instances_series_are_kept_for_the_last_retired_kept_only():
    stats = TargetStats("api/prod")
    for n in range(RETIRED_KEPT * 3):
        series = stats.for_instance("blue", f"i-{n}", "1.0.0")
        stats.observe(series, "2xx", 0.01)
        stats.retire(f"i-{n}")
    assert len(stats.instances) == RETIRED_KEPT
    assert f"i-{RETIRED_KEPT * 3 - 1}" in stats.instances and "i-0" not in stats.instances
    assert stats.slots["blue"].count == RETIRED_KEPT * 3  # the slot's totals never go away


def test_per_version_totals_keep_the_newest_versions_and_any_a_live_instance_runs():
    stats = TargetStats("api/prod")
    old = stats.for_instance("blue", "i-long-lived", "0.9.0")  # never retired
    for n in range(VERSIONS_KEPT * 5):
        series = stats.for_instance("blue", f"i-{n}", f"1.{n}.0")
        stats.observe(series, "2xx", 0.01)
        stats.retire(f"i-{n}")
        assert len([k for k in stats.slot_versions if k[0] == "blue"]) <= VERSIONS_KEPT + 1
    kept = {v for (slot, v) in stats.slot_versions if slot == "blue"}
    assert ("0.9.0" in kept) and len(kept) == VERSIONS_KEPT + 1
    assert f"1.{VERSIONS_KEPT * 5 - 1}.0" in kept and "1.0.0" not in kept
    # a late answer of a forgotten version counts again rather than failing
    stats.observe(stats.instances[f"i-{VERSIONS_KEPT * 5 - 1}"], "2xx", 0.01)
    stats.observe(old, "5xx", 0.02)
    assert stats.slot_versions[("blue", "0.9.0")].codes["5xx"] == 1


def test_a_slow_canary_never_holds_more_than_the_limit_of_mirrored_copies():
    async def scenario():
        answered = []

        async def slow(request):
            await asyncio.sleep(1.0)
            answered.append(1)
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", slow)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
        observed = []
        inst = SimpleNamespace(base_url=f"http://127.0.0.1:{port}", series=object())
        request = SimpleNamespace(method="POST", raw_path="/orders")
        copier = Copier()
        sent = MAX_IN_FLIGHT * 4
        async with aiohttp.ClientSession() as session:
            peak = 0
            for _ in range(sent):
                copier.send(session, inst, request, {}, b"{}", lambda *a: observed.append(a))
                peak = max(peak, copier.in_flight)
                await asyncio.sleep(0)
            assert peak == MAX_IN_FLIGHT
            assert copier.dropped == sent - MAX_IN_FLIGHT
            deadline = time.monotonic() + 10
            while copier.in_flight and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert copier.in_flight == 0 and len(observed) == MAX_IN_FLIGHT
            # room again once they finished
            copier.send(session, inst, request, {}, b"{}", lambda *a: observed.append(a))
            assert copier.in_flight == 1
            await copier.close()
        await runner.cleanup()
        return answered

    assert len(asyncio.run(scenario())) >= MAX_IN_FLIGHT


def test_a_series_sketch_holds_one_counter_per_bucket_seen_however_many_requests():
    import math
    import random

    from integrations.local.stats import SKETCH_GAMMA, SKETCH_MIN_MS, Series

    rng = random.Random(3)
    series = Series()
    for _ in range(200_000):  # 0.001 ms .. 60 s, log-uniform
        series.observe("2xx", math.exp(rng.uniform(math.log(1e-6), math.log(60.0))))
    most = math.ceil(math.log(60_000 / SKETCH_MIN_MS) / math.log(SKETCH_GAMMA)) + 1
    assert series.count == 200_000 and len(series.sketch) <= most < 800
