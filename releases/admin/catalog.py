"""Services, environments, targets and releases in the admin. Configuration is editable and
every change is audited; a target's config is checked by its provider's validator
(``integrations.registry``); releases are read-only."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from integrations.registry import validate_target_config
from releases.admin.common import AuditedAdmin, ReadOnlyAdmin, StrategyFieldMixin
from releases.models import (
    Environment,
    Release,
    Service,
    Target,
)


class ServiceForm(StrategyFieldMixin, forms.ModelForm):
    strategy_fields = ("default_strategy",)

    class Meta:
        model = Service
        fields = ("slug", "name", "repository", "team", "default_strategy")


@admin.register(Service)
class ServiceAdmin(AuditedAdmin):
    form = ServiceForm
    audit_name = "service"
    list_display = ("slug", "name", "team", "repository", "created_at")
    search_fields = ("slug", "name", "team")

    def get_readonly_fields(self, request, obj=None):
        return ("slug", "created_at") if obj else ("created_at",)


class EnvironmentForm(StrategyFieldMixin, forms.ModelForm):
    strategy_fields = ("default_strategy",)

    class Meta:
        model = Environment
        fields = ("slug", "name", "order", "default_strategy")


@admin.register(Environment)
class EnvironmentAdmin(AuditedAdmin):
    form = EnvironmentForm
    audit_name = "environment"
    list_display = ("slug", "name", "order", "created_at")
    ordering = ("order", "slug")

    def get_readonly_fields(self, request, obj=None):
        return ("slug", "created_at") if obj else ("created_at",)


class TargetForm(StrategyFieldMixin, forms.ModelForm):
    strategy_fields = ("strategy",)

    class Meta:
        model = Target
        fields = ("service", "environment", "provider", "config", "strategy")

    def clean(self):
        cleaned = super().clean()
        provider, config = cleaned.get("provider"), cleaned.get("config")
        if provider and config is not None:
            for path, message in validate_target_config(provider, config or {}):
                field = "provider" if path == "provider" else "config"
                where = f"{path}: " if path and path not in ("provider", "config") else ""
                self.add_error(field, f"{where}{message}")
        return cleaned


@admin.register(Target)
class TargetAdmin(AuditedAdmin):
    form = TargetForm
    audit_name = "target"
    list_display = ("__str__", "provider", "stable_release", "endpoint", "observed_at")
    list_filter = ("environment", "provider")
    list_select_related = ("service", "environment", "stable_release")
    readonly_fields = (
        "stable_release",
        "stable_slot",
        "endpoint",
        "observed",
        "observed_at",
        "updated_at",
    )

    def get_readonly_fields(self, request, obj=None):
        fixed = ("service", "environment") if obj else ()
        return fixed + self.readonly_fields


# --- read-only records ------------------------------------------------------------------------


@admin.register(Release)
class ReleaseAdmin(ReadOnlyAdmin):
    list_display = ("service", "version", "commit", "created_by", "created_via", "created_at")
    list_filter = ("service", "created_via")
    list_select_related = ("service", "created_by")
    search_fields = ("version", "commit", "notes")
