"""Experiments (A/B tests) on a flag's variants in one environment.

- ``start`` / ``stop``: actions (the flag.change role there, an audit event each); at most one
  running experiment per flag and environment; the variants' weights are kept as they were at
  the start (the sample-ratio check's expected shares).
- ``ingest``: exposures and conversions reported by SDKs or services
  (``POST /experiments/v1/events``, ``flags.protocols.experiments``), counted per variant per
  minute of arrival (the server's clock: a client cannot backdate a look). Events for a flag
  with no running experiment there, or a variant it does not have, are ignored and counted as
  such in the answer.
- ``look``: advances each treatment's sequential test over the minutes closed since the last
  look, one look per minute, in order -- the same result whoever looks, whenever (beat's
  ``flag-experiments`` entry runs it every sweep interval; reading a result runs it too). The
  first verdict a treatment reaches is kept with its time.
- ``result``: the dict the API, the page and (later) plan gates share.

The statistics are ``flags.engine.experiment`` (pure).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from flags import governance, live
from flags.engine import experiment as stats
from flags.models import Experiment, ExperimentCount, ExperimentState, FlagSetting
from releases import audit
from releases.errors import Conflict, InvalidRequest

MAX_EVENTS = 1000
MAX_COUNT = 10_000  # one event may stand for this many (a service's batch)
TYPES = ("exposure", "conversion")


class BadEvents(InvalidRequest):
    pass


def _minute(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


# --- start and stop ---------------------------------------------------------------------------


def start(
    actor, flag, environment, control: str, *, goal: str = "", mde: float = 0.05, alpha=0.05
) -> Experiment:
    governance.require(actor, "flag.change", environment)
    setting = FlagSetting.objects.filter(flag=flag, environment=environment).first()
    variants = [
        {"name": v["name"], "weight": v["weight"]} for v in (setting.variants if setting else [])
    ]
    if len(variants) < 2:
        raise InvalidRequest(
            f"{flag.key} needs at least two variants in {environment.slug} for an experiment.",
            details={"variants": [v["name"] for v in variants]},
        )
    if control not in {v["name"] for v in variants}:
        raise InvalidRequest(
            f"The control must be one of {flag.key}'s variants: "
            f"{', '.join(v['name'] for v in variants)}.",
            details={"control": control},
        )
    if isinstance(mde, bool) or not isinstance(mde, int | float) or not 0 < mde <= 10:
        raise InvalidRequest("mde (the smallest relative lift worth detecting) is 0 to 10.")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha <= 0.2:
        raise InvalidRequest("alpha is above 0 and at most 0.2.")
    try:
        with transaction.atomic():
            row = Experiment.objects.create(
                flag=flag,
                environment=environment,
                control=control,
                variants=variants,
                goal=goal[:100],
                mde=float(mde),
                alpha=float(alpha),
                started_by=actor.name[:150],
            )
            audit.record(
                actor,
                "flag.experiment.start",
                row,
                {"control": control, "variants": variants, "goal": goal, "mde": mde},
                object_repr=f"{flag.key} in {environment.slug}",
            )
            live.publish(flag.pk)
    except IntegrityError as exc:
        raise Conflict(
            f"{flag.key} already has a running experiment in {environment.slug}."
        ) from exc
    return row


def stop(actor, experiment: Experiment) -> Experiment:
    governance.require(actor, "flag.change", experiment.environment)
    look(experiment.pk)
    with transaction.atomic():
        row = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if row.state != ExperimentState.RUNNING:
            raise Conflict("The experiment is already stopped.", details={"state": row.state})
        row.state, row.stopped_at = ExperimentState.STOPPED, timezone.now()
        row.save(update_fields=["state", "stopped_at"])
        audit.record(
            actor,
            "flag.experiment.stop",
            row,
            {"decided": row.decided},
            object_repr=f"{experiment.flag.key} in {experiment.environment.slug}",
        )
        live.publish(row.flag_id)
    return row


# --- events -----------------------------------------------------------------------------------


def check_events(body) -> list[tuple[str, str, str, int]]:
    """(flag, variant, type, count) of each event; BadEvents naming every problem by path."""
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list):
        raise BadEvents(
            'Send {"events": [{"flag", "variant", "type": "exposure" | "conversion", "count"}]}.'
        )
    if len(events) > MAX_EVENTS:
        raise BadEvents(
            f"At most {MAX_EVENTS} events per request (send the rest in another).",
            details={"errors": [{"path": "events", "message": f"{len(events)} events"}]},
        )
    out, errors = [], []
    for i, event in enumerate(events):
        at, before = f"events[{i}]", len(errors)
        if not isinstance(event, dict) or set(event) - {"flag", "variant", "type", "count"}:
            errors.append({"path": at, "message": 'must be {"flag", "variant", "type", "count"}'})
            continue
        for name in ("flag", "variant"):
            value = event.get(name)
            if not isinstance(value, str) or not 0 < len(value) <= 100:
                errors.append({"path": f"{at}.{name}", "message": "a name of 1-100 characters"})
        if event.get("type") not in TYPES:
            errors.append({"path": f"{at}.type", "message": "exposure or conversion"})
        n = event.get("count", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 0 < n <= MAX_COUNT:
            errors.append({"path": f"{at}.count", "message": f"a whole number 1-{MAX_COUNT}"})
        if len(errors) == before:
            out.append((event["flag"], event["variant"], event["type"], n))
    if errors:
        raise BadEvents("Some events are not valid.", details={"errors": errors[:50]})
    return out


def ingest(environment_id: int, events, now: datetime | None = None) -> dict:
    """Count valid ``events`` (``check_events``' output) into the minute of ``now``."""
    now = now or timezone.now()
    running = {
        e.flag.key: e
        for e in Experiment.objects.filter(
            environment_id=environment_id, state=ExperimentState.RUNNING
        ).select_related("flag")
    }
    totals: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    ignored = 0
    for key, variant, kind, n in events:
        experiment = running.get(key)
        if experiment is None or variant not in {v["name"] for v in experiment.variants}:
            ignored += 1
            continue
        totals[(experiment.pk, variant)][0 if kind == "exposure" else 1] += n
    if totals:
        minute = _minute(now)
        rows = [(pk, minute, variant, e, c) for (pk, variant), (e, c) in sorted(totals.items())]
        # one statement, rows in one order: concurrent requests queue instead of deadlocking
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {ExperimentCount._meta.db_table} "
                "(experiment_id, minute, variant, exposures, conversions) VALUES "
                + ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
                + " ON CONFLICT (experiment_id, minute, variant) DO UPDATE SET "
                "exposures = EXCLUDED.exposures + "
                f"{ExperimentCount._meta.db_table}.exposures, "
                "conversions = EXCLUDED.conversions + "
                f"{ExperimentCount._meta.db_table}.conversions",
                [value for row in rows for value in row],
            )
    return {"accepted": len(events) - ignored, "ignored": ignored}


# --- looks ------------------------------------------------------------------------------------


def _totals(experiment: Experiment, **filters) -> dict[str, tuple[int, int]]:
    """{variant: (conversions, exposures)}."""
    rows = (
        ExperimentCount.objects.filter(experiment=experiment, **filters)
        .values("variant")
        .annotate(e=Sum("exposures"), c=Sum("conversions"))
    )
    found = {r["variant"]: (r["c"] or 0, r["e"] or 0) for r in rows}
    return {v["name"]: found.get(v["name"], (0, 0)) for v in experiment.variants}


def treatments(experiment: Experiment) -> list[str]:
    return [v["name"] for v in experiment.variants if v["name"] != experiment.control]


def look(experiment_id: int, now: datetime | None = None) -> Experiment:
    """Advance the experiment's sequential tests over the minutes closed since the last look
    (a minute is closed a minute after it ends)."""
    now = now or timezone.now()
    cutoff = _minute(now) - timedelta(minutes=1)
    with transaction.atomic():
        row = Experiment.objects.select_for_update().get(pk=experiment_id)
        if row.stopped_at is not None:
            cutoff = min(cutoff, _minute(row.stopped_at) + timedelta(minutes=1))
        since = row.looked_until or _minute(row.started_at)
        if cutoff <= since:
            return row
        cumulative = {k: list(v) for k, v in _totals(row, minute__lt=since).items()}
        minutes: dict[datetime, dict[str, tuple[int, int]]] = defaultdict(dict)
        for c in ExperimentCount.objects.filter(
            experiment=row, minute__gte=since, minute__lt=cutoff
        ).order_by("minute"):
            minutes[c.minute][c.variant] = (c.conversions, c.exposures)
        names = treatments(row)
        level = stats.per_direction_alpha(row.alpha, len(names))
        comparisons = {n: stats.Comparison.from_dict(row.sequential.get(n)) for n in names}
        odds = {
            n: stats.OddsRatioSequence.from_dict((row.sequential.get(n) or {}).get("odds"))
            for n in names
        }
        decided = dict(row.decided)
        for minute in sorted(minutes):
            for variant, (c, e) in minutes[minute].items():
                if variant in cumulative:
                    cumulative[variant][0] += c
                    cumulative[variant][1] += e
            control = tuple(cumulative[row.control])
            for name in names:
                treatment = tuple(cumulative[name])
                comparisons[name] = comparisons[name].advance(control, treatment)
                odds[name] = odds[name].advance(control, treatment, level)
                verdict = comparisons[name].verdict(level)
                if verdict != "inconclusive" and name not in decided:
                    at = (minute + timedelta(minutes=1)).isoformat()
                    decided[name] = {"verdict": verdict, "at": at}
        row.sequential = {
            n: {**c.to_dict(), "odds": odds[n].to_dict()} for n, c in comparisons.items()
        }
        row.decided, row.looked_until = decided, cutoff
        row.save(update_fields=["sequential", "decided", "looked_until"])
    return row


def look_all(now: datetime | None = None) -> int:
    ids = list(
        Experiment.objects.filter(state=ExperimentState.RUNNING).values_list("pk", flat=True)
    )
    for pk in ids:
        look(pk, now)
    return len(ids)


# --- the result -------------------------------------------------------------------------------


def _per_hour(experiment: Experiment, now: datetime) -> dict[str, float]:
    """Exposures per hour over the last day (or since the start, if shorter)."""
    end = experiment.stopped_at or now
    start = max(experiment.started_at, end - timedelta(hours=24))
    hours = max((end - start).total_seconds() / 3600, 1 / 60)
    recent = _totals(experiment, minute__gte=_minute(start))
    return {name: e / hours for name, (_, e) in recent.items()}


def _interval(pair):
    return None if pair is None else [pair[0], pair[1]]


def result(experiment: Experiment, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    if experiment.state == ExperimentState.RUNNING:
        experiment = look(experiment.pk, now)
    totals = _totals(experiment)
    names = treatments(experiment)
    level = stats.per_direction_alpha(experiment.alpha, len(names))
    per_hour = _per_hour(experiment, now)
    mismatch = stats.sample_ratio(
        [totals[v["name"]][1] for v in experiment.variants],
        [v["weight"] for v in experiment.variants],
    )
    control = totals[experiment.control]
    control_rate, _ = stats.rate(*control, experiment.alpha)
    rows = []
    for v in experiment.variants:
        name = v["name"]
        conversions, exposures = totals[name]
        point, interval = stats.rate(conversions, exposures, experiment.alpha)
        row = {
            "name": name,
            "control": name == experiment.control,
            "weight": v["weight"],
            "exposures": exposures,
            "conversions": conversions,
            "rate": point,
            "interval": _interval(interval),
            "exposures_per_hour": round(per_hour.get(name, 0.0), 2),
        }
        if name != experiment.control:
            sequential = experiment.sequential.get(name) or {}
            comparison = stats.Comparison.from_dict(sequential)
            low, high = stats.OddsRatioSequence.from_dict(sequential.get("odds")).interval()
            at = control_rate or 0.0
            decided = experiment.decided.get(name)
            row.update(
                {
                    "lift": stats.lift(control, (conversions, exposures)),
                    "odds_ratio_interval": [low, high],
                    "lift_interval": [stats.lift_at(low, at), stats.lift_at(high, at)],
                    # what a bound of None means: beyond the grid's ends (odds ratios 0.5, 2)
                    "lift_at_grid_ends": [
                        stats.lift_at(stats.NULL_GRID[0], at),
                        stats.lift_at(stats.NULL_GRID[-1], at),
                    ],
                    "evidence_better": comparison.up.e_value,
                    "evidence_worse": comparison.down.e_value,
                    "threshold": 1 / level,
                    "verdict": decided["verdict"] if decided else "inconclusive",
                    "decided_at": decided["at"] if decided else None,
                    **_needed(experiment, comparison, name, control_rate, point, per_hour, level),
                }
            )
        rows.append(row)
    srm = None
    if mismatch is not None:
        srm = {
            "statistic": mismatch.statistic,
            "p_value": mismatch.p_value,
            "mismatched": mismatch.mismatched,
            "threshold": stats.SRM_P,
        }
    return {
        "id": experiment.pk,
        "flag": experiment.flag.key,
        "environment": experiment.environment.slug,
        "state": experiment.state,
        "control": experiment.control,
        "goal": experiment.goal,
        "alpha": experiment.alpha,
        "mde": experiment.mde,
        "started_at": experiment.started_at,
        "stopped_at": experiment.stopped_at,
        "looked_until": experiment.looked_until,
        "variants": rows,
        "sample_ratio": srm,
        "verdict": _overall(rows, srm),
    }


def _needed(experiment, comparison, name, control_rate, rate, per_hour, level) -> dict:
    """Hours still needed at today's traffic: at the rates seen so far, and at the minimum
    detectable effect (when the control converts at all)."""
    if experiment.decided.get(name) or control_rate is None or rate is None:
        return {"hours_needed": None, "hours_needed_at_mde": None}
    mine = (per_hour.get(name, 0.0), rate)
    theirs = (per_hour.get(experiment.control, 0.0), control_rate)
    if rate >= control_rate:
        observed = stats.hours_needed(comparison.up, mine, theirs, level)
    else:
        observed = stats.hours_needed(comparison.down, theirs, mine, level)
    at_mde = None
    if 0 < control_rate * (1 + experiment.mde) < 1:
        at_mde = stats.hours_needed(
            comparison.up, (mine[0], control_rate * (1 + experiment.mde)), theirs, level
        )
    return {"hours_needed": observed, "hours_needed_at_mde": at_mde}


def _overall(rows, srm) -> dict:
    if srm and srm["mismatched"]:
        return {
            "state": "sample_ratio_mismatch",
            "message": (
                f"The exposures do not match the variants' weights (chi-square p = "
                f"{srm['p_value']:.2g} < {srm['threshold']}): assignment or logging is broken; "
                "no verdict stands until it is fixed."
            ),
        }
    decided = [r for r in rows if not r["control"] and r["verdict"] != "inconclusive"]
    better = [r["name"] for r in decided if r["verdict"] == "better"]
    worse = [r["name"] for r in decided if r["verdict"] == "worse"]
    if better:
        return {"state": "better", "message": f"{', '.join(better)} converts more than control."}
    if worse and len(worse) == len([r for r in rows if not r["control"]]):
        return {"state": "worse", "message": f"{', '.join(worse)} converts less than control."}
    return {"state": "inconclusive", "message": "No difference shown yet."}


def open_or_latest(flag, environment) -> Experiment | None:
    return (
        Experiment.objects.select_related("flag", "environment")
        .filter(flag=flag, environment=environment)
        .order_by("-id")
        .first()
    )
