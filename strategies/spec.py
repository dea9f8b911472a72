"""Strategy specs: validation into a normalised JSON-ready dict, and the steps a spec plans.

``KINDS`` maps each available ``kind`` to how its keys are read and how its steps are worded;
``blue_green`` and ``canary`` (``strategies.spec_bluegreen``, ``strategies.spec_canary``) are also
accepted in Argo Rollouts' ``{"blueGreen": {...}}`` / ``{"canary": {...}}`` shape and translated,
with errors naming the key the user wrote; a whole Argo Rollouts ``Rollout`` manifest
(``strategies.argo_rollout``) and a Flagger ``Canary`` (``strategies.flagger``) are read too.

A normalised spec has every default filled in and durations as float seconds; counts that may be
percentages (``batch_size``, ``max_surge``, ``max_unavailable``) keep the user's int or "NN%".

Analysis references (``strategies.spec_analysis``: a canary ``analysis`` step or background
``analysis``, blue-green ``pre_promotion_analysis`` / ``post_promotion_analysis``, a rolling
``analysis`` after each batch but the last) name stored templates; ``analysis_refs`` lists them by
path, and ``normalise(raw, templates=check)`` reports the ones ``check`` refuses (a template that
does not exist, a missing argument) at the path the user wrote, with the other errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from strategies import (
    argo_canary,
    argo_rollout,
    flagger,
    spec_analysis,
    spec_bluegreen,
    spec_canary,
)
from strategies.argo import Translation, repath
from strategies.fields import (
    FieldError,
    Fields,
    SpecError,
    count_or_percent,
    duration,
    resolve,
    show,
)
from strategies.readers import (
    DEFAULT_HEALTH,
    DEFAULT_PROGRESS_DEADLINE,
    read_health,
    read_progress_deadline,
    read_replicas,
)

__all__ = [
    "DEFAULT_HEALTH",
    "DEFAULT_PROGRESS_DEADLINE",
    "KINDS",
    "FieldError",
    "Kind",
    "SpecError",
    "analysis_refs",
    "describe_steps",
    "health_of",
    "min_ready_of",
    "normalise",
    "replicas_of",
    "rollback_spec_of",
    "rolling_sizes",
]

# kinds DESIGN.md promises that are not registered in KINDS yet (each comes with its own issue)
PLANNED: tuple[str, ...] = ()
# Argo Rollouts spells a strategy as a top-level key instead of "kind"
ARGO_KEYS = {"canary": "canary", "blueGreen": "blue_green"}


@dataclass(frozen=True)
class Kind:
    """One strategy kind: ``read`` returns its normalised keys (everything but "kind") from a
    ``Fields`` over the raw spec; ``steps`` words the planned steps of a normalised spec;
    ``from_argo``, if set, translates an Argo Rollouts spec into ours before reading (adding
    its own errors, and returning None when there is nothing to read)."""

    read: Callable[[Fields], dict[str, Any]]
    steps: Callable[[dict[str, Any]], list[str]]
    from_argo: Callable[[dict[str, Any], list[FieldError]], Translation | None] | None = None


# templates(name, args) -> [(path under the reference, message)]: what is wrong with running the
# analysis template ``name`` with ``args`` (nothing: it can run)
TemplateCheck = Callable[[str, dict[str, str]], list[tuple[str, str]]]


def normalise(raw: Any, *, templates: TemplateCheck | None = None) -> dict[str, Any]:
    """Validate ``raw`` and return the normalised spec; raise SpecError listing every problem.
    ``templates`` (optional) checks each analysis reference against the stored templates."""
    if not isinstance(raw, dict):
        raise SpecError([FieldError("", f"must be an object, got {show(raw)}")])
    if flagger.is_manifest(raw):  # a Flagger Canary, pasted as it is
        return _flagger(raw, templates)
    if argo_rollout.is_manifest(raw):  # a whole Argo Rollouts Rollout, pasted as it is
        return argo_rollout.normalise(raw, lambda inner: normalise(inner, templates=templates))
    errors: list[FieldError] = []
    name = _kind_name(raw, errors)
    if name is None:
        raise SpecError(errors)
    kind = KINDS[name]
    paths: list[tuple[str, str]] = []
    if "kind" not in raw and kind.from_argo is not None:
        translated = kind.from_argo(raw, errors)
        if translated is None:
            raise SpecError(errors)
        raw, paths = translated.spec, translated.paths
        if translated.kind is not None:  # Argo's canary without steps is a rolling update
            name, kind = translated.kind, KINDS[translated.kind]
    ours: list[FieldError] = []
    fields = Fields(raw, "", ours)
    fields.seen.add("kind")
    out = {"kind": name, **kind.read(fields)}
    fields.finish()
    if templates is not None:
        for path, ref in analysis_refs(out):
            if ref and ref.get("template") is not None and ref.get("args") is not None:
                several = ref.get("templates")
                for index, name in enumerate(several or [ref["template"]]):
                    at = f"{path}.templates[{index}]" if several else path
                    own = ((ref.get("per_template") or {}).get(name) or {}).get("args") or {}
                    for sub, message in templates(name, {**ref["args"], **own}):
                        ours.append(FieldError(f"{at}.{sub}" if sub else at, message))
    errors += repath(ours, paths)
    if errors:
        raise SpecError(errors)
    return out


def _flagger(raw: dict[str, Any], templates: TemplateCheck | None) -> dict[str, Any]:
    errors: list[FieldError] = []
    translated = flagger.translate(raw, errors)
    if translated is None:
        raise SpecError(errors)
    inner, paths = translated
    try:
        out = normalise(inner, templates=templates)
    except SpecError as exc:
        # a problem already named at Flagger's key is not repeated in our words
        named = {e.path for e in errors}
        ours = exc.errors
        if errors and not inner.get("steps"):  # no steps: Flagger's keys were wrong, as said
            ours = [e for e in ours if e.path != "steps"]
        errors += [e for e in repath(ours, paths) if e.path not in named]
    if errors:
        raise SpecError(errors)
    return out


def analysis_refs(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """Every analysis reference of a normalised spec, with its path: ("steps[2].analysis",
    {"template", "args"})."""
    kind = spec.get("kind")
    if kind == "canary":
        for index, step in enumerate(spec.get("steps") or []):
            if "analysis" in step:
                yield f"steps[{index}].analysis", step["analysis"]
            for n, ref in enumerate((step.get("experiment") or {}).get("analyses") or []):
                yield f"steps[{index}].experiment.analyses[{n}]", ref
        keys: tuple[str, ...] = ("analysis",)
    elif kind == "blue_green":
        keys = ("pre_promotion_analysis", "post_promotion_analysis")
    elif kind == "rolling":
        keys = ("analysis",)
    else:
        keys = ()
    for key in keys:
        if spec.get(key) is not None:
            yield key, spec[key]


def describe_steps(spec: dict[str, Any]) -> list[str]:
    """The planned steps of a normalised spec, in words, in order."""
    return KINDS[spec["kind"]].steps(spec)


def health_of(spec: dict[str, Any]) -> dict[str, Any]:
    """The health check of a normalised spec: path, interval (s), healthy/unhealthy thresholds."""
    return {**DEFAULT_HEALTH, **spec.get("health", {})}


def replicas_of(spec: dict[str, Any]) -> int:
    """How many instances serve when the rollout is done (``stable_replicas`` for a canary)."""
    return int(spec["replicas"] if "replicas" in spec else spec["stable_replicas"])


def rollback_spec_of(spec: dict[str, Any]) -> dict[str, Any]:
    """The raw spec that brings the previous release back after ``spec`` succeeded.

    Rolling and recreate: a fast rolling update (every old instance started at once, traffic
    spread as they become ready, then the new ones drained). Blue-green and canary: a blue-green
    switch back (every old instance started on the idle side, no smoke checks, then 100% switched
    at once and the new release scaled down right after), so requests never alternate between
    versions while the old release starts. Either way the health check is fast (every 100 ms,
    one success): the release is known to have served until just now.
    """
    replicas = replicas_of(spec)
    if spec["kind"] in ("blue_green", "canary"):
        raw = {
            "kind": "blue_green",
            "replicas": replicas,
            "preview_replicas": replicas,
            "auto_promote": 0,
            "scale_down_delay": 0,
        }
    else:
        raw = {
            "kind": "rolling",
            "replicas": replicas,
            "batch_size": "100%",
            "max_surge": "100%",
            "max_unavailable": 0,
        }
    # the previous release was serving a moment ago: one passing check, looked for often, is
    # evidence enough, and every 100 ms saved here is time users spend on the bad release
    health = dict(spec.get("health") or {})
    health.update(interval=min(float(health.get("interval", 0.5)), 0.1), healthy_threshold=1)
    raw["health"] = health
    return raw


def switch_back_spec_of(spec: dict[str, Any]) -> dict[str, Any]:
    """The raw spec that switches back to the previous release kept warm by the rollback window
    (docs/loop.md), whatever ``spec``'s kind: a blue-green switch with the preview as large as the
    release, no smoke checks and no delays, so the tick that sees the warm instances ready routes
    100% to them and the newer release's slot is scaled down right after. If a warm instance was
    lost meanwhile, the switch waits for its replacement (the health check of
    ``rollback_spec_of``: one pass, looked for every 100 ms)."""
    raw = rollback_spec_of(spec)
    replicas = raw["replicas"]
    return {
        "kind": "blue_green",
        "replicas": replicas,
        "preview_replicas": replicas,
        "auto_promote": 0,
        "scale_down_delay": 0,
        "health": raw["health"],
    }


def min_ready_of(spec: dict[str, Any]) -> float:
    """Seconds an instance must stay ready to count as available (0 if the kind has none)."""
    return float(spec.get("min_ready", 0.0))


def rolling_sizes(spec: dict[str, Any]) -> tuple[int, int, int, int]:
    """(replicas, max_surge, max_unavailable, batch_size) of a rolling spec as whole numbers:
    surge rounds up, unavailable rounds down (at most replicas), batch rounds up (1..replicas)."""
    replicas = spec["replicas"]
    surge = resolve(spec["max_surge"], replicas, round_up=True)
    unavailable = min(replicas, resolve(spec["max_unavailable"], replicas, round_up=False))
    batch = min(replicas, max(1, resolve(spec["batch_size"], replicas, round_up=True)))
    return replicas, surge, unavailable, batch


def _kind_name(raw: dict[str, Any], errors: list[FieldError]) -> str | None:
    """The registered kind ``raw`` asks for, or None after recording why there is none."""
    available = ", ".join(show(name) for name in KINDS)
    if "kind" in raw:
        path, name = "kind", raw["kind"]
    else:
        argo = [key for key in ARGO_KEYS if key in raw]
        if not argo:
            errors.append(FieldError("kind", f"is required: one of {available}"))
            return None
        if len(argo) > 1:
            errors.append(
                FieldError(
                    argo[1],
                    "a rollout has one strategy: give 'canary' or 'blueGreen', not both",
                )
            )
            return None
        path, name = argo[0], ARGO_KEYS[argo[0]]
    if isinstance(name, str) and name in KINDS:
        return name
    if path == "kind" and isinstance(name, str) and ARGO_KEYS.get(name) in KINDS:
        ours = ARGO_KEYS[name]
        errors.append(
            FieldError(
                path,
                f"unknown strategy {show(name)}: did you mean {show(ours)}? (Argo Rollouts' "
                f'form has no "kind": {{"{name}": {{...}}}})',
            )
        )
        return None
    if isinstance(name, str) and ARGO_KEYS.get(name, name) in PLANNED:
        message = f"strategy {show(ARGO_KEYS.get(name, name))} is not available yet; use one of"
        errors.append(FieldError(path, f"{message} {available}"))
    else:
        errors.append(
            FieldError(path, f"unknown strategy {show(name)}: expected one of {available}")
        )
    return None


def _read_recreate(fields: Fields) -> dict[str, Any]:
    return {
        "replicas": read_replicas(fields),
        "progress_deadline": read_progress_deadline(fields),
        "health": read_health(fields),
    }


def _read_rolling(fields: Fields) -> dict[str, Any]:
    out = {
        "replicas": read_replicas(fields),
        "batch_size": fields.take("batch_size", 1, count_or_percent(1)),
        "max_surge": fields.take("max_surge", 1, count_or_percent(0)),
        "max_unavailable": fields.take("max_unavailable", 0, count_or_percent(0)),
        "min_ready": fields.take("min_ready", 0.0, duration(positive=False)),
        "analysis": _read_rolling_analysis(fields),
        "progress_deadline": read_progress_deadline(fields),
        "health": read_health(fields),
    }
    replicas, surge, unavailable = out["replicas"], out["max_surge"], out["max_unavailable"]
    batch = out["batch_size"]
    if out["analysis"] is not None and None not in (replicas, batch):
        if min(replicas, max(1, resolve(batch, replicas, round_up=True))) >= replicas:
            fields.error(
                "analysis",
                f"runs after each batch but the last, and batch_size {show(batch)} replaces all "
                f"{replicas} instance(s) in one batch: use a smaller batch_size",
            )
    if None not in (replicas, surge, unavailable):
        resolved_surge = resolve(surge, replicas, round_up=True)
        resolved_unavailable = resolve(unavailable, replicas, round_up=False)
        if resolved_surge + resolved_unavailable < 1:
            fields.error(
                "max_surge",
                f"max_surge ({_resolved(surge, resolved_surge)}) and max_unavailable "
                f"({_resolved(unavailable, resolved_unavailable)}) are both 0 with "
                f"{replicas} replicas: no instance could ever be replaced; "
                "set one of them to at least 1",
            )
    return out


def _read_rolling_analysis(fields: Fields) -> dict[str, Any] | None:
    fields.seen.add("analysis")
    if fields.raw.get("analysis") is None:
        return None
    return spec_analysis.read_ref(fields.raw["analysis"], fields.path("analysis"), fields.errors)


def _resolved(value: int | str, resolved: int) -> str:
    return str(value) if isinstance(value, int) else f"{show(value)} = {resolved}"


def _rolling_steps(spec: dict[str, Any]) -> list[str]:
    replicas, _, _, batch = rolling_sizes(spec)
    count = -(-replicas // batch)
    out = [
        f"batch {k} of {count}: {min(replicas, k * batch)}/{replicas} instances on the new release"
        for k in range(1, count + 1)
    ]
    if spec.get("analysis") is not None:
        words = spec_analysis.words(spec["analysis"])
        for k in range(count - 1):
            out[k] += f", then {words} against the old release (fail: roll back)"
    return out


def _recreate_steps(spec: dict[str, Any]) -> list[str]:
    replicas = spec["replicas"]
    return [
        "stop the old release",
        f"start {replicas} instance{'' if replicas == 1 else 's'} of the new release",
        "route 100% to the new release",
    ]


KINDS: dict[str, Kind] = {
    "recreate": Kind(read=_read_recreate, steps=_recreate_steps),
    "rolling": Kind(read=_read_rolling, steps=_rolling_steps),
    "blue_green": Kind(
        read=spec_bluegreen.read, steps=spec_bluegreen.steps, from_argo=spec_bluegreen.from_argo
    ),
    "canary": Kind(read=spec_canary.read, steps=spec_canary.steps, from_argo=argo_canary.from_argo),
}


def required_capabilities(spec: dict[str, Any]) -> set[str]:
    """What a target's routing must be able to do to carry out a normalised spec, by the names of
    ``integrations.registry.Capabilities`` (strategies knows the names, not the providers):

    - a canary moves traffic by weight (``weights``); its ``route`` needs ``header_rules``,
      ``cookie_rules`` and ``sticky`` for a header, a cookie and a sticky key; a
      ``set_header_route`` step needs ``header_routes`` (requests matched by header values, which
      the ``always``/``never`` override of ``header_rules`` cannot do) and a ``set_mirror_route``
      step ``mirroring``; an ``experiment`` step runs extra slots beside the two
      (``experiment_slots``);
    - a blue-green switch moves all traffic from one slot to the other at once (``switch``: any
      router with ``weights`` can, and so can one that only selects a slot), and its smoke checks
      and pre-promotion analysis run against the idle side on a preview endpoint (``preview``);
    - rolling and recreate replace instances in place and need nothing of the router.
    """
    kind = spec.get("kind")
    needed: set[str] = set()
    if kind == "canary":
        needed.add("weights")
        route = spec.get("route") or {}
        if route.get("header"):
            needed.add("header_rules")
        if route.get("cookie"):
            needed.add("cookie_rules")
        if route.get("sticky_key"):
            needed.add("sticky")
        for step in spec.get("steps") or []:
            if "set_header_route" in step:
                needed.add("header_routes")
            if "set_mirror_route" in step:
                needed.add("mirroring")
            if "experiment" in step:
                needed.add("experiment_slots")
    elif kind == "blue_green":
        needed.add("switch")
        if spec.get("smoke") or spec.get("pre_promotion_analysis"):
            needed.add("preview")
    return needed
