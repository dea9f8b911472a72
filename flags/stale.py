"""The stale-flag report over the database (the judgement is ``flags.engine.stale``)."""

from __future__ import annotations

from django.conf import settings as django_settings
from django.utils import timezone

from flags.engine import stale
from flags.models import EXPECTED_LIFETIME_DAYS, Flag


def unused_days() -> int:
    return int(getattr(django_settings, "FLAGS_UNUSED_DAYS", 7))


def report(now=None) -> list[dict]:
    """``[{"key", "flag_type", "reasons"}]`` for every live flag that is stale."""
    now = now or timezone.now()
    out = []
    flags = Flag.objects.filter(archived_at__isnull=True).prefetch_related("settings__environment")
    for flag in flags:
        found = stale.reasons(
            flag.created_at,
            EXPECTED_LIFETIME_DAYS.get(flag.flag_type),
            [
                stale.Setting(
                    s.environment.slug, s.serving, s.strategies, s.changed_at, s.last_evaluated_at
                )
                for s in flag.settings.all()
            ],
            now,
            unused_days(),
        )
        if found:
            out.append({"key": flag.key, "flag_type": flag.flag_type, "reasons": found})
    return out
