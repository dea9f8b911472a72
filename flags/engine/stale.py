"""Which flags have outlived what their type expects (pure: plain values in, reasons out).

A flag is stale when, in every environment that has a setting for it, it has been fully on
(serving everyone: no strategies, or one that is on for all without constraints) or fully off
for longer than its type's expected lifetime -- the code paths it guards should have been
cleaned up -- or when nothing has evaluated it for ``unused_days``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Setting:
    environment: str
    serving: bool
    strategies: list
    changed_at: datetime
    last_evaluated_at: datetime | None


def fully_on(setting: Setting) -> bool:
    if not setting.serving:
        return False
    if not setting.strategies:
        return True
    for s in setting.strategies:
        if s.get("disabled") or s.get("constraints") or s.get("segments"):
            continue
        if s["name"] == "default":
            return True
        if s["name"] == "flexibleRollout" and s["parameters"].get("rollout") == "100":
            return True
    return False


def reasons(
    created_at: datetime,
    lifetime_days: int | None,
    settings: list[Setting],
    now: datetime,
    unused_days: int = 7,
) -> list[str]:
    """Why a flag is stale (empty: it is not)."""
    found = []
    if lifetime_days is not None and settings and now - created_at > timedelta(lifetime_days):
        states = {
            ("on" if fully_on(s) else "off" if not s.serving else "partial") for s in settings
        }
        settled_since = max(s.changed_at for s in settings)
        if "partial" not in states and now - settled_since > timedelta(lifetime_days):
            state = (
                "fully on"
                if states == {"on"}
                else "fully off"
                if states == {"off"}
                else ("fully on or off")
            )
            found.append(
                f"{state} everywhere for {(now - settled_since).days} days; a flag of "
                f"this type is expected to live {lifetime_days} days"
            )
    if now - created_at > timedelta(unused_days):
        last = max((s.last_evaluated_at for s in settings if s.last_evaluated_at), default=None)
        if last is None or now - last > timedelta(unused_days):
            when = "never" if last is None else f"not for {(now - last).days} days"
            found.append(f"evaluated {when} (more than {unused_days} days)")
    return found
