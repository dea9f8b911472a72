"""Django admin for the releases app.

Configuration (services, environments, targets) is editable here. Releases, deployment events and
the audit trail are read-only. A deployment's state changes only through ``releases.commands``:
its admin page is read-only and offers the operator commands as actions. Tokens are created
through ``releases.tokens`` and their secret is shown once, in a message.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import transaction

from integrations.registry import validate_target_config
from releases import audit, commands, tokens
from releases.actors import Actor
from releases.errors import DomainError
from releases.models import (
    ApiToken,
    AuditEvent,
    Channel,
    Deployment,
    DeploymentEvent,
    Environment,
    Release,
    Service,
    Target,
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
                cleaned[name] = commands.validate_strategy(raw)
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


class DeploymentEventInline(admin.TabularInline):
    model = DeploymentEvent
    fields = ("created_at", "kind", "message", "actor", "data")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("id",)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _operator_action(command: str, label: str):
    """An admin action that runs ``commands.<command>`` on each selected deployment."""

    def action(modeladmin, request, queryset):
        actor = admin_actor(request)
        for deployment in queryset:
            try:
                getattr(commands, command)(actor, deployment.pk)
            except DomainError as exc:
                modeladmin.message_user(request, exc.message, messages.ERROR)
            else:
                modeladmin.message_user(request, f"{label}: deployment #{deployment.pk}.")

    action.__name__ = f"{command}_deployments"
    return admin.action(description=f"{label} the selected deployments", permissions=["operate"])(
        action
    )


@admin.register(Deployment)
class DeploymentAdmin(ReadOnlyAdmin):
    """Read-only: state changes only through commands (the actions above the list)."""

    list_display = ("id", "target", "release", "state", "step", "created_by", "created_at")
    list_filter = ("state", "target__environment", "target__service")
    list_select_related = ("target__service", "target__environment", "release", "created_by")
    search_fields = ("release__version", "reason", "target__service__slug")
    inlines = (DeploymentEventInline,)
    actions = [
        _operator_action("pause", "Pause"),
        _operator_action("resume", "Resume"),
        _operator_action("promote", "Promote"),
        _operator_action("abort", "Abort"),
        _operator_action("rollback", "Roll back"),
    ]

    def has_operate_permission(self, request):
        # who may run operator commands; roles per environment will refine this
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Deployment._meta.fields]


@admin.register(DeploymentEvent)
class DeploymentEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "deployment", "kind", "message", "actor", "created_at")
    list_filter = ("kind",)
    list_select_related = ("deployment",)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor_name", "channel", "action", "object_type", "object_repr")
    list_filter = ("channel", "action", "object_type")
    search_fields = ("actor_name", "action", "object_id", "object_repr")


# --- tokens -----------------------------------------------------------------------------------


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(name, f"{name}: {text}") for name, text in tokens.SCOPES.items()],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None: the token may do whatever its user may.",
    )
    environments = forms.ModelMultipleChoiceField(
        queryset=Environment.objects.all(),
        to_field_name="slug",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None: wherever its user's roles reach.",
    )
    services = forms.ModelMultipleChoiceField(
        queryset=Service.objects.all(),
        to_field_name="slug",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None: every service.",
    )

    class Meta:
        model = ApiToken
        fields = ("user", "name", "scopes", "environments", "services", "expires_at")

    def clean_environments(self):  # stored as slugs
        return [e.slug for e in self.cleaned_data.get("environments") or ()]

    def clean_services(self):
        return [s.slug for s in self.cleaned_data.get("services") or ()]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Adding a token creates it through ``releases.tokens`` and shows the secret once."""

    list_display = ("name", "prefix", "user", "scopes", "status", "expires_at", "last_used_at")
    list_select_related = ("user",)
    search_fields = ("name", "prefix", "user__username")
    actions = ["revoke_tokens"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "name", "scopes", "environments", "services", "expires_at")
        return (
            "name",
            "user",
            "prefix",
            "scopes",
            "environments",
            "services",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "last_used_from",
            "created_at",
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return [f for f in self.get_fields(request, obj) if f != "name"]

    @admin.display(description="status")
    def status(self, obj):
        return tokens.status(obj)

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        row, token = tokens.create(
            form.cleaned_data["user"],
            form.cleaned_data["name"],
            scopes=form.cleaned_data.get("scopes") or (),
            environments=form.cleaned_data.get("environments") or (),
            services=form.cleaned_data.get("services") or (),
            expires_at=form.cleaned_data.get("expires_at"),
            actor=admin_actor(request),
        )
        for field in ApiToken._meta.concrete_fields:  # the admin logs and redirects with obj
            setattr(obj, field.attname, getattr(row, field.attname))
        obj._state.adding = False
        messages.warning(
            request,
            f"The token {tokens.display(row)} is {token} -- copy it now: it is not shown again.",
        )

    @admin.action(description="Revoke the selected tokens")
    def revoke_tokens(self, request, queryset):
        for row in queryset:
            tokens.revoke(row.prefix, actor=admin_actor(request))
        self.message_user(request, f"Revoked {queryset.count()} token(s).")


import releases.admin_analysis  # noqa: E402, F401  (registers the analysis models)
import releases.admin_governance  # noqa: E402, F401  (roles, policies, freezes, approvals)
