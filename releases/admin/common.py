"""What the admin modules share: the admin's actor, read-only and audited base classes, and
the strategy-spec form field (validated by ``releases.actions.validate_strategy``)."""

from __future__ import annotations

from django.contrib import admin
from django.db import transaction

from releases import actions, audit
from releases.actors import Actor
from releases.errors import DomainError
from releases.models import (
    Channel,
)


def admin_actor(request) -> Actor:
    return Actor.from_request(request, channel=Channel.UI, via="admin")


class ReadOnlyAdmin(admin.ModelAdmin):
    """View-only: nothing is added, changed or deleted here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StrategyFieldMixin:
    """Validate (and normalise) the strategy JSON fields named in ``strategy_fields``."""

    strategy_fields: tuple[str, ...] = ()

    def clean(self):
        cleaned = super().clean()
        for name in self.strategy_fields:
            raw = cleaned.get(name)
            if not raw:
                cleaned[name] = {}
                continue
            try:
                cleaned[name] = actions.validate_strategy(raw)
            except DomainError as exc:
                for error in exc.details.get("errors", []) or [
                    {"path": "", "message": exc.message}
                ]:
                    where = f"{error['path']}: " if error["path"] else ""
                    self.add_error(name, f"{where}{error['message']}")
        return cleaned


class AuditedAdmin(admin.ModelAdmin):
    """Save only the fields the form edits (never stale copies of fields a tick writes), and
    write an AuditEvent for each create and change."""

    audit_name = ""

    def save_model(self, request, obj, form, change):
        changed = {name: form.cleaned_data.get(name) for name in form.changed_data}
        before = {name: form.initial.get(name) for name in form.changed_data} if change else None
        with transaction.atomic():
            if change:
                if not changed:
                    return
                obj.save(update_fields=list(changed))
            else:
                obj.save()
            action = f"{self.audit_name}.{'update' if change else 'create'}"
            audit.record(
                admin_actor(request),
                action,
                obj,
                _plain(changed),
                before=_plain(before) if before is not None else None,
            )

    def delete_model(self, request, obj):
        with transaction.atomic():
            audit.record(admin_actor(request), f"{self.audit_name}.delete", obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


def _plain(data: dict) -> dict:
    return {
        k: (v if isinstance(v, (str, int, float, bool, dict, list, type(None))) else str(v))
        for k, v in data.items()
    }


# --- configuration ----------------------------------------------------------------------------
