"""Releases' deployments, their events and the audit trail in the admin: read-only records. The
operator commands are offered as admin actions and go through ``releases.actions``."""

from __future__ import annotations

from django.contrib import admin, messages

from releases import actions
from releases.admin.common import ReadOnlyAdmin, admin_actor
from releases.errors import DomainError
from releases.models import (
    AuditEvent,
    Deployment,
    DeploymentEvent,
)


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
                getattr(actions, command)(actor, deployment.pk)
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
