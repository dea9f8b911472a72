"""Request samples for the deployment page's live charts: per slot request rate, error rate and
p95/p99 latency, computed from each target's provider counters and kept for the last 15 minutes.

How a sample is made. The ``sample_metrics`` task (Celery beat, every ``ACTIVE_INTERVAL``
seconds) reads the due targets' monotonic counters through their provider's ``MetricsSource``,
one call per provider (``integrations.registry.read_counters``; the local fleet answers for every
target in one request to its agent). A target with an active deployment is sampled every
round; any other target every ``IDLE_INTERVAL`` seconds. A sample is the difference between this
reading and the target's previous one, divided by the time between them (the agent's clock):

- ``rps``: requests answered per second (every code class, connection errors included);
- ``error_rate``: (5xx + connection errors) / requests, 0..1; None when there were no requests;
- ``p95_ms`` / ``p99_ms``: the latency quantiles of those requests, interpolated linearly within
  the histogram bucket that holds them (as Prometheus' ``histogram_quantile`` does); a quantile in
  the open-ended last bucket is reported as the largest finite bound; None without requests.

A sample also carries the seconds it spans and, when the provider says (the local fleet does), the
router's ``weights`` per slot as the counters were read: the per-side rates that the page reads
against the split (``split_rates``) are taken over the latest samples of one split, the same
seconds for both sides, so a 20% canary shows about 20% of the requests (a single 2 s sample of
a few dozen requests is off by several points by chance alone).

A provider that compares mirrored answers with the users' (the local router's dark launch) adds
its running totals as the sample's ``dark_launch``, passed through as it reads them.

A counter that went backwards (the agent restarted) gives no sample: the new reading becomes the
baseline.

Two kinds of reading come from the providers, through the same ``read_counters`` call:

- monotonic counters (``{"time", "slots": {slot: {"requests", "total", "buckets",
  "versions"}}}``): the local fleet's agent, and a kubernetes target's Prometheus (the totals of
  its router's standard request metrics, ``integrations.kubernetes.metrics``); a sample is the
  difference between two readings, as above;
- windowed counts (the same, plus ``"window": seconds``): what happened during the window that
  ends at ``time``, as CloudWatch reports a period (``integrations.metrics.cloudwatch``); a sample
  is that window alone (none when the window is the one already sampled). Such a slot may carry
  its latency quantiles as ``"quantiles_ms": {"p95", "p99"}`` instead of buckets.

Rounds never overlap (a short Redis lock), so deltas are never taken twice.

Where samples live: Redis, one sorted set per target scored by time and trimmed to
``WINDOW_SECONDS`` on every write, plus the previous reading. Not a model: a sample every 2 s per
target is write churn Postgres would have to vacuum, for data that is only worth anything for 15
minutes and can be rebuilt from the agent's counters; the durable record of a deployment stays its
DeploymentEvents (and, with the analysis issue, its AnalysisRuns). Losing Redis loses at most the
charts' last 15 minutes.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from typing import Any

import redis
from django.conf import settings

from integrations import registry
from integrations.base import IntegrationError
from releases.live.events import publish_metrics
from releases.models import ACTIVE_STATES, Deployment, Target

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 15 * 60
ACTIVE_INTERVAL = 2.0
IDLE_INTERVAL = 30.0
MIN_INTERVAL = 0.5  # two readings closer than this give no sample (too noisy)
KEY_PREFIX = "switchyard:metrics"
LOCK_MS = 15_000
READING_TTL = 3600
ERROR_CLASSES = ("5xx", "error")
WARN_EVERY = 60.0
STEADY_SECONDS = 30.0  # the per-side rates read against the split: at most this many seconds

_clients: dict[tuple[int, str], redis.Redis] = {}
_warned_at = 0.0


# --- arithmetic (pure) ---------------------------------------------------------------------------


def _bound(label: str) -> float:
    return float("inf") if label == "+Inf" else float(label)


def quantile(buckets: list[tuple[float, int]], q: float) -> float | None:
    """The ``q`` quantile (0..1) of cumulative ``(upper bound, count)`` buckets sorted by bound;
    None when they hold nothing."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0
    finite = [b for b, _ in buckets if b != float("inf")]
    for upper, count in buckets:
        if count >= rank and count > below:
            if upper == float("inf"):
                return finite[-1] if finite else None
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return finite[-1] if finite else None


def slot_sample(before: dict | None, after: dict, seconds: float) -> dict | None:
    """One slot's rates between two readings ``seconds`` apart; None if a counter went back."""
    before = before or {"requests": {}, "total": 0, "buckets": {}, "versions": {}}
    requests = after["total"] - before["total"]
    errors = sum(after["requests"].get(k, 0) - before["requests"].get(k, 0) for k in ERROR_CLASSES)
    deltas = sorted(
        (_bound(label), count - before["buckets"].get(label, 0))
        for label, count in after["buckets"].items()
    )
    if requests < 0 or errors < 0 or any(n < 0 for _, n in deltas):
        return None
    versions = {
        v: n - before["versions"].get(v, 0) for v, n in (after.get("versions") or {}).items()
    }
    busiest = max(versions.items(), key=lambda item: item[1], default=(None, 0))
    p95, p99 = quantile(deltas, 0.95), quantile(deltas, 0.99)
    return {
        "version": busiest[0] if busiest[1] > 0 else None,
        "rps": round(requests / seconds, 3),
        "error_rate": round(errors / requests, 5) if requests else None,
        "p95_ms": round(p95, 2) if p95 is not None else None,
        "p99_ms": round(p99, 2) if p99 is not None else None,
        "requests": requests,
        "errors": errors,
    }


def window_sample(previous: dict | None, reading: dict) -> dict | None:
    """The sample of a windowed reading (counts over ``reading["window"]`` seconds ending at
    ``reading["time"]``), or None when that window was already sampled."""
    if previous is not None and previous.get("time") == reading["time"]:
        return None
    seconds = float(reading["window"])
    slots = {}
    for name, counts in reading["slots"].items():
        sample = slot_sample(None, {"buckets": {}, "versions": {}, **counts}, seconds)
        if sample is None:
            return None
        for q in ("p95", "p99"):
            given = (counts.get("quantiles_ms") or {}).get(q)
            if sample[f"{q}_ms"] is None and given is not None:
                sample[f"{q}_ms"] = round(float(given), 2)
        slots[name] = sample
    sample = {"t": round(reading["time"], 3), "seconds": seconds, "slots": slots}
    if reading.get("weights") is not None:
        sample["weights"] = reading["weights"]
    return sample


def make_sample(previous: dict | None, reading: dict) -> dict | None:
    """The sample between a target's previous reading and this one, or None (no previous one,
    too close together, or a counter reset); a windowed reading is its own sample."""
    if reading.get("window"):
        return window_sample(previous, reading)
    if previous is None:
        return None
    seconds = reading["time"] - previous["time"]
    if seconds < MIN_INTERVAL:
        return None
    slots = {}
    for name, counters in reading["slots"].items():
        sample = slot_sample(previous["slots"].get(name), counters, seconds)
        if sample is None:
            return None
        slots[name] = sample
    sample = {"t": round(reading["time"], 3), "seconds": round(seconds, 3), "slots": slots}
    if reading.get("weights") is not None:
        sample["weights"] = reading["weights"]
    if reading.get("dark_launch"):  # the router's running comparison of mirrored answers
        sample["dark_launch"] = reading["dark_launch"]
    return sample


def split_rates(samples: list[dict], slots: dict[str, str], span: float = STEADY_SECONDS):
    """Each side's request rate and share of the requests over the latest samples taken at one
    split, so that they can be read against the weights: those of the last ``span`` seconds whose
    whole interval ran under the latest sample's ``weights`` (a sample counts only when the one
    before it was read at the same weights too). ``slots`` maps a side ("stable", "canary") to
    its slot. Both sides over the same samples, hence the same seconds. None without a sample.
    static/js/deployment.js (splitRates) computes the same for the live page."""
    if not samples:
        return None
    latest = samples[-1]
    weights = latest.get("weights")
    chosen = []
    for i in range(len(samples) - 1, -1, -1):
        sample = samples[i]
        seconds = sample.get("seconds")
        if seconds is None or sample["t"] - seconds < latest["t"] - span - 0.5:
            break
        if weights is not None and (
            sample.get("weights") != weights or i == 0 or samples[i - 1].get("weights") != weights
        ):
            break
        chosen.append(sample)
    if not chosen:
        return None
    seconds = sum(s["seconds"] for s in chosen)
    total = sum(n.get("requests", 0) for s in chosen for n in s["slots"].values())
    weight_sum = sum((weights or {}).values())
    sides = {}
    for side, slot in slots.items():
        requests = sum(s["slots"].get(slot, {}).get("requests", 0) for s in chosen)
        errors = sum(s["slots"].get(slot, {}).get("errors", 0) for s in chosen)
        sides[side] = {
            "slot": slot,
            "requests": requests,
            "rps": round(requests / seconds, 3),
            "error_rate": round(errors / requests, 5) if requests else None,
            "share": round(requests / total, 4) if total else None,
            "weight": round(100 * weights.get(slot, 0) / weight_sum, 1) if weight_sum else None,
        }
    return {"seconds": round(seconds, 3), "requests": total, "samples": len(chosen), "sides": sides}


# --- storage --------------------------------------------------------------------------------------


def redis_client() -> redis.Redis:
    key = (os.getpid(), settings.REDIS_URL)  # never share a connection across a fork
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2.0, socket_connect_timeout=2.0
        )
    return client


class Store:
    """Samples per target in a sorted set (score: time), trimmed to the window on each write."""

    def __init__(self, client: redis.Redis | None = None, prefix: str | None = None):
        self.client = client or redis_client()
        self.prefix = prefix or KEY_PREFIX

    def _samples(self, target_id: int) -> str:
        return f"{self.prefix}:{target_id}:samples"

    def _reading(self, target_id: int) -> str:
        return f"{self.prefix}:{target_id}:reading"

    def add(self, target_id: int, sample: dict) -> None:
        key = self._samples(target_id)
        pipe = self.client.pipeline()
        pipe.zadd(key, {json.dumps(sample, separators=(",", ":")): sample["t"]})
        pipe.zremrangebyscore(key, "-inf", f"({sample['t'] - WINDOW_SECONDS}")
        pipe.expire(key, WINDOW_SECONDS + 60)
        pipe.execute()

    def since(self, target_id: int, after: float | None = None, *, now: float | None = None):
        """Samples of the last 15 minutes (those newer than ``after`` if given), oldest first."""
        oldest = (now or time.time()) - WINDOW_SECONDS
        low = f"({after}" if after is not None and after > oldest else oldest
        raw = self.client.zrangebyscore(self._samples(target_id), low, "+inf")
        return [json.loads(item) for item in raw]

    def latest(self, target_id: int) -> dict | None:
        raw = self.client.zrange(self._samples(target_id), -1, -1)
        sample = json.loads(raw[0]) if raw else None
        if sample is None or sample["t"] < time.time() - WINDOW_SECONDS:
            return None
        return sample

    def readings(self, target_ids: list[int]) -> dict[int, dict]:
        if not target_ids:
            return {}
        raw = self.client.mget([self._reading(i) for i in target_ids])
        return {i: json.loads(r) for i, r in zip(target_ids, raw, strict=True) if r}

    def save_readings(self, readings: dict[int, dict]) -> None:
        pipe = self.client.pipeline()
        for target_id, reading in readings.items():
            pipe.set(self._reading(target_id), json.dumps(reading), ex=READING_TTL)
        pipe.execute()

    def lock(self) -> str | None:
        token = secrets.token_hex(8)
        ok = self.client.set(f"{self.prefix}:lock", token, nx=True, px=LOCK_MS)
        return token if ok else None

    def unlock(self, token: str) -> None:
        key = f"{self.prefix}:lock"
        if self.client.get(key) == token.encode():
            self.client.delete(key)


# --- one round ------------------------------------------------------------------------------------


def due_targets(targets: list[Target], active: set[int], readings: dict, now: float) -> list:
    """Targets with an active deployment, and the others whose last reading is IDLE_INTERVAL old."""
    return [
        t
        for t in targets
        if t.pk in active or now - readings.get(t.pk, {}).get("at", 0.0) >= IDLE_INTERVAL - 0.5
    ]


def read_providers(targets: list[Target]) -> dict[str, dict]:
    """Every due target's counters, one call per provider through its ``MetricsSource``
    (``integrations.registry.read_counters``); providers whose metrics cannot give counters are
    skipped (their targets have no live charts)."""
    by_provider: dict[str, list[str]] = {}
    configs: dict[str, dict] = {}
    for t in targets:
        by_provider.setdefault(t.provider, []).append(t.key)
        configs[t.key] = t.config or {}
    counters: dict[str, dict] = {}
    for provider, keys in by_provider.items():
        counters.update(registry.read_counters(provider, keys, configs) or {})
    return counters


def sample_all(*, store: Store | None = None, read=read_providers) -> int:
    """One sampling round: returns the number of samples stored (and published)."""
    global _warned_at
    try:
        store = store or Store()
        token = store.lock()
    except redis.RedisError as exc:
        logger.warning("metrics: Redis is not answering (%s); no samples this round", exc)
        return 0
    if token is None:
        return 0  # another round is still running
    try:
        targets = list(Target.objects.select_related("service", "environment"))
        active = set(
            Deployment.objects.filter(state__in=ACTIVE_STATES).values_list("target_id", flat=True)
        )
        readings = store.readings([t.pk for t in targets])
        now = time.time()
        due = due_targets(targets, active, readings, now)
        if not due:
            return 0
        try:
            counters = read(due)
        except IntegrationError as exc:
            if time.monotonic() - _warned_at > WARN_EVERY:
                logger.warning("metrics: %s", exc.message)
                _warned_at = time.monotonic()
            return 0
        fresh, made = {}, 0
        for t in due:
            reading = counters.get(t.key)
            if reading is None:
                continue
            reading = {**reading, "at": now}
            fresh[t.pk] = reading
            sample = make_sample(readings.get(t.pk), reading)
            if sample is not None:
                store.add(t.pk, sample)
                publish_metrics(t.pk, t.key, [sample])
                made += 1
        store.save_readings(fresh)
        return made
    except redis.RedisError as exc:
        logger.warning("metrics: Redis failed mid-round (%s)", exc)
        return 0
    finally:
        try:
            store.unlock(token)
        except redis.RedisError:
            pass


def window(target_id: int, after: float | None = None) -> list[dict[str, Any]]:
    """The stored samples of a target (for a page's snapshot); [] if Redis is not answering."""
    try:
        return Store().since(target_id, after)
    except redis.RedisError:
        logger.warning("metrics: Redis is not answering; charts start empty", exc_info=True)
        return []


def latest(target_id: int) -> dict | None:
    try:
        return Store().latest(target_id)
    except redis.RedisError:
        return None
