"""The slots of a canary's experiment step on the target (``strategies.spec_experiment``).

The engine names an experiment slot by its key (``"1-baseline"``: step index and template
name) and says every tick which it wants (``Decision.experiment``: the whole set); here each key
becomes a slot of the target of its own, ``exp-<deployment id>-<key>`` (``slot_name``), running
the old release (``release: stable``) or the new one. ``start`` starts or resizes what differs
from the target's status (before routing gives them requests) and ``remove`` (after routing
took them off) removes every experiment slot not wanted -- this deployment's finished
or torn-down ones, and any left by an earlier deployment of the target (a target has one active
deployment at a time, so an ``exp-`` slot that is not this one's is a leftover). Everything is
read from the status each tick, so a worker that dies mid-experiment leaves nothing the next
tick does not see: it starts no slot twice and leaks none.
"""

from __future__ import annotations

import re

from integrations.base import TargetStatus
from releases.models import Deployment
from releases.targets import release_ref
from strategies.spec_experiment import POD_HASH, slot_key, slot_keys

PREFIX = "exp-"
ROLE = "experiment:"  # the engine's weights name an experiment slot "experiment:<key>"


def slot_name(d: Deployment, key: str) -> str:
    return f"{PREFIX}{d.pk}-{key}"


def _own(d: Deployment) -> str:
    return f"{PREFIX}{d.pk}-"


def release_of(d: Deployment, ref: str):
    """The release an experiment slot of ``spec_ref`` runs (None: there is no old release)."""
    return d.from_release if ref == "stable" else d.release


def observe(d: Deployment, status: TargetStatus, min_ready: float, state_of) -> dict:
    """The engine's ``Observation.experiment``: each of this deployment's experiment slots the
    target runs, by key (instances of another release count as nothing)."""
    refs = slot_keys(d.strategy)
    out = {}
    for name in status.slots:
        if not name.startswith(_own(d)):
            continue
        key = name[len(_own(d)) :]
        release = release_of(d, refs.get(key, "canary"))
        out[key] = state_of(status, name, min_ready, only=release.version if release else None)
    return out


def start(target, d: Deployment, status: TargetStatus, wanted: dict | None, health: dict) -> bool:
    """Make the target run the experiment slots ``wanted`` ({key: {"release", "replicas"}}) as
    asked; True if it called the target."""
    acted = False
    for name, want in _names(d, wanted).items():
        release = release_of(d, want["release"])
        if release is None:
            continue  # no old release: the engine skips such an experiment
        seen = status.slots.get(name)
        if seen and (seen.desired, seen.version) == (want["replicas"], release.version):
            continue
        target.ensure_slot(name, release_ref(release, health), want["replicas"])
        acted = True
    return acted


def remove(target, d: Deployment, status: TargetStatus, wanted: dict | None) -> bool:
    """Remove every experiment slot of the target not in ``wanted``; True if it called it."""
    acted = False
    names = _names(d, wanted)
    for name, seen in status.slots.items():
        # desired 0: already removed, its instances draining (an experiment slot is never
        # scaled to 0 otherwise)
        if name.startswith(PREFIX) and name not in names and seen.desired > 0:
            target.remove_slot(name)
            acted = True
    return acted


def _names(d: Deployment, wanted: dict | None) -> dict[str, dict]:
    return {slot_name(d, key): want for key, want in (wanted or {}).items()}


def slot_of_roles(d: Deployment, weights: dict | None) -> dict[str, str]:
    """The engine's experiment roles in ``weights`` ("experiment:1-canary") -> slot names."""
    return {
        role: slot_name(d, role[len(ROLE) :]) for role in weights or {} if role.startswith(ROLE)
    }


def arms(d: Deployment, request: dict) -> dict | None:
    """An analysis request's ``arms`` (by engine key, or "stable" / "canary") as the slots and
    versions its metrics compare: {"baseline": {"slot", "version"}, "canary": {...}}."""
    given = request.get("arms")
    if not given:
        return None
    out = {}
    refs = slot_keys(d.strategy)
    for side, key in given.items():
        if key in ("stable", "canary"):
            slot = d.stable_slot if key == "stable" else d.canary_slot
            release = release_of(d, key)
        else:
            slot, release = slot_name(d, key), release_of(d, refs.get(key, "canary"))
        out[side] = {"slot": slot, "version": release.version if release else None}
    return out


def args(d: Deployment, request: dict) -> dict | None:
    """The request's arguments with Argo's ``{{templates.NAME.podTemplateHash}}`` replaced by the
    slot name of that template of the experiment (how its instances are told apart here)."""
    given = request.get("args")
    if not given or not request.get("arms") or request.get("step_index") is None:
        return given
    index = request["step_index"]

    def name(match: re.Match) -> str:
        return slot_name(d, slot_key(index, match.group(1)))

    return {k: POD_HASH.sub(name, v) if isinstance(v, str) else v for k, v in given.items()}


def roles(d: Deployment, status: TargetStatus) -> dict[str, str]:
    """How the Instances card calls this deployment's experiment slots."""
    refs = slot_keys(d.strategy)
    out = {}
    for name in status.slots:
        if name.startswith(_own(d)):
            ref = refs.get(name[len(_own(d)) :], "canary")
            out[name] = "experiment baseline" if ref == "stable" else "experiment canary"
    return out
