"""The ONE place flags change (as ``releases.actions`` is for deployments).

Every action checks the actor's role (``flags.governance``), runs in one short transaction,
locks the row it changes, writes an AuditEvent (``releases.audit.record``, with the values
before and after) and bumps the revision of every environment whose served document changes --
so SDK endpoints see the change on their next request. Nothing here makes a network call.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from flags import governance, live, state, validation
from flags.models import Flag, FlagSetting, FlagType, Revision, Segment, ValueKind
from releases import audit
from releases.errors import Conflict, InvalidRequest, NotFound
from releases.models import Environment


def bump(environment_ids) -> None:
    """Move the revision of these environments on (inside the caller's transaction); this
    process serves the change as soon as it commits (``state.forget``)."""
    environment_ids = list(environment_ids)
    transaction.on_commit(lambda: state.forget(environment_ids))
    for env_id in environment_ids:
        if not Revision.objects.filter(environment_id=env_id).update(number=F("number") + 1):
            Revision.objects.get_or_create(environment_id=env_id, defaults={"number": 2})


def _snapshot(s: FlagSetting) -> dict:
    return {
        "enabled": s.enabled,
        "strategies": s.strategies,
        "variants": s.variants,
        "killed": s.killed,
    }


def _setting(flag: Flag, environment: Environment) -> FlagSetting:
    """The flag's setting in the environment, locked (created, off, if it has none)."""
    try:
        with transaction.atomic():
            FlagSetting.objects.get_or_create(flag=flag, environment=environment)
    except IntegrityError:  # created by a concurrent action
        pass
    return (
        FlagSetting.objects.select_for_update()
        .select_related("flag", "environment")
        .get(flag=flag, environment=environment)
    )


def _check_version(setting: FlagSetting, expected: int | None) -> None:
    if expected is not None and expected != setting.version:
        raise Conflict(
            f"{setting} changed since you read it (version {setting.version}, you had "
            f"{expected}); reload and try again.",
            details={"version": setting.version},
        )


# --- the flag itself --------------------------------------------------------------------------


def create_flag(
    actor,
    key: str,
    *,
    flag_type=FlagType.RELEASE,
    kind=ValueKind.BOOLEAN,
    description: str = "",
    default_value=None,
) -> Flag:
    governance.require(actor, "flag.create")
    validation.check_key(key)
    if flag_type not in FlagType.values:
        raise InvalidRequest(f"Flag type must be one of {', '.join(FlagType.values)}.")
    if kind not in ValueKind.values:
        raise InvalidRequest(f"Kind must be one of {', '.join(ValueKind.values)}.")
    validation.fail("The default value is not valid.", validation.check_value(kind, default_value))
    if kind != ValueKind.BOOLEAN and default_value is None:
        raise InvalidRequest(f"A {kind} flag needs a default_value (served when it is off).")
    with transaction.atomic():
        if Flag.objects.filter(key=key).exists():
            raise Conflict(f"There is already a flag {key!r}.", details={"key": key})
        flag = Flag.objects.create(
            key=key,
            flag_type=flag_type,
            kind=kind,
            description=description,
            default_value=default_value,
            created_by=actor.name[:150],
        )
        audit.record(
            actor,
            "flag.create",
            flag,
            {"key": key, "flag_type": flag_type, "kind": kind, "default_value": default_value},
        )
        bump(Environment.objects.values_list("pk", flat=True))
    return flag


def update_flag(actor, flag: Flag, **changes) -> Flag:
    governance.require(actor, "flag.update")
    allowed = {"description", "flag_type", "default_value", "impression_data"}
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidRequest(f"These cannot be changed: {', '.join(sorted(unknown))}.")
    if "flag_type" in changes and changes["flag_type"] not in FlagType.values:
        raise InvalidRequest(f"Flag type must be one of {', '.join(FlagType.values)}.")
    if "default_value" in changes:
        validation.fail(
            "The default value is not valid.",
            validation.check_value(flag.kind, changes["default_value"]),
        )
    with transaction.atomic():
        flag = Flag.objects.select_for_update().get(pk=flag.pk)
        before = {k: getattr(flag, k) for k in changes}
        for k, v in changes.items():
            setattr(flag, k, v)
        flag.save()
        audit.record(actor, "flag.update", flag, changes, before=before)
        bump(Environment.objects.values_list("pk", flat=True))
    return flag


def archive_flag(actor, flag: Flag) -> Flag:
    """Stop serving the flag anywhere (its history stays)."""
    governance.require(actor, "flag.archive")
    with transaction.atomic():
        flag = Flag.objects.select_for_update().get(pk=flag.pk)
        if flag.archived_at is None:
            flag.archived_at = timezone.now()
            flag.save(update_fields=["archived_at"])
            audit.record(actor, "flag.archive", flag)
            bump(Environment.objects.values_list("pk", flat=True))
    return flag


# --- a flag in one environment ----------------------------------------------------------------


def _change(actor, flag, environment, action, apply, *, version=None, data=None):
    governance.require(
        actor, "flag.kill" if action.startswith("flag.kill") else "flag.change", environment
    )
    if flag.archived_at is not None:
        raise Conflict(f"Flag {flag.key!r} is archived.", details={"key": flag.key})
    with transaction.atomic():
        setting = _setting(flag, environment)
        _check_version(setting, version)
        before = _snapshot(setting)
        apply(setting)
        after = _snapshot(setting)
        if after != before:
            setting.version += 1
            setting.changed_at = timezone.now()
            setting.save()
            bump([environment.pk])
        audit.record(
            actor,
            action,
            setting,
            {**(data or {}), **after},
            before=before,
            object_repr=f"{flag.key} in {environment.slug}",
        )
        live.publish(flag.pk)
    return setting


def set_enabled(actor, flag: Flag, environment: Environment, enabled: bool, *, version=None):
    def apply(s):
        s.enabled = bool(enabled)

    return _change(
        actor,
        flag,
        environment,
        "flag.enable" if enabled else "flag.disable",
        apply,
        version=version,
    )


def set_strategies(actor, flag: Flag, environment: Environment, strategies, *, version=None):
    governance.require(actor, "flag.change", environment)  # before saying what is wrong
    segment_ids = list(Segment.objects.values_list("pk", flat=True))
    clean = validation.strategies_of(strategies, flag.kind, flag.key, segment_ids)

    def apply(s):
        s.strategies = clean

    return _change(actor, flag, environment, "flag.strategies", apply, version=version)


# the id prefix of the strategies a rollout plan adds for its segment steps (one per segment)
PLAN_SEGMENT = "plan-segment-"


def set_rollout(
    actor,
    flag: Flag,
    environment: Environment,
    percent: int,
    *,
    segments: list[int] | None = None,
    version=None,
):
    """Set the gradual rollout's percentage (adding a ``flexibleRollout`` strategy when the flag
    has none): the one-click step of a percentage ladder. With ``segments`` (a rollout plan's
    segment steps so far), the flag is also on for everyone in each of those segments, through
    one ``default`` strategy per segment that the plan owns (others' strategies are left)."""
    if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
        raise InvalidRequest("The rollout is a whole percentage from 0 to 100.")
    setting = FlagSetting.objects.filter(flag=flag, environment=environment).first()
    strategies = list(setting.strategies) if setting else []
    if segments is not None:
        strategies = [s for s in strategies if not str(s.get("id", "")).startswith(PLAN_SEGMENT)]
        strategies += [
            {"id": f"{PLAN_SEGMENT}{pk}", "name": "default", "parameters": {}, "segments": [pk]}
            for pk in segments
        ]
    rollouts = [s for s in strategies if s["name"] == "flexibleRollout"]
    if rollouts:
        rollouts[0]["parameters"] = {**rollouts[0]["parameters"], "rollout": str(percent)}
    else:
        strategies.append(
            {
                "name": "flexibleRollout",
                "parameters": {"rollout": str(percent), "stickiness": "default"},
            }
        )
    return set_strategies(actor, flag, environment, strategies, version=version)


def set_variants(actor, flag: Flag, environment: Environment, variants, *, version=None):
    governance.require(actor, "flag.change", environment)
    clean = validation.feature_variants(variants, flag.kind)

    def apply(s):
        s.variants = clean

    return _change(actor, flag, environment, "flag.variants", apply, version=version)


def kill(actor, flag: Flag, environment: Environment, reason: str = ""):
    """The kill switch: off in the environment now, whatever its strategies, until restored."""

    def apply(s):
        if s.killed_at is None:
            s.killed_at = timezone.now()
            s.killed_by = actor.name[:150]
            s.kill_reason = reason[:300]

    return _change(actor, flag, environment, "flag.kill", apply, data={"reason": reason})


def restore(actor, flag: Flag, environment: Environment):
    """Undo the kill switch: the flag serves its strategies again."""

    def apply(s):
        s.killed_at, s.killed_by, s.kill_reason = None, "", ""

    return _change(actor, flag, environment, "flag.kill.restore", apply)


# --- segments ---------------------------------------------------------------------------------


def save_segment(actor, name: str, constraints, description: str = "") -> Segment:
    """Create the segment ``name`` or replace its constraints (every environment using it
    changes)."""
    governance.require(actor, "segment.change")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise InvalidRequest("A segment needs a name (up to 100 characters).")
    clean = validation.segment_constraints(constraints)
    with transaction.atomic():
        segment = Segment.objects.select_for_update().filter(name=name).first()
        before = {"constraints": segment.constraints} if segment else None
        if segment is None:
            segment = Segment(name=name)
        segment.constraints, segment.description = clean, description
        segment.updated_at = timezone.now()
        segment.save()
        audit.record(actor, "segment.save", segment, {"constraints": clean}, before=before)
        bump(Environment.objects.values_list("pk", flat=True))
    return segment


def flag_by_key(key: str) -> Flag:
    flag = Flag.objects.filter(key=key).first()
    if flag is None:
        raise NotFound(f"There is no flag {key!r}.", details={"key": key})
    return flag
