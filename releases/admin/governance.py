"""Django admin for governance: role bindings, environment policies and freeze windows are
shown here read-only (``releases.admin.governed``: they change only where the role rules apply);
approvals and freeze overrides are read-only records. The same rules are enforced for every
channel in ``releases.actions``.

The Django admin is for superusers (and staff given model permissions); an environment's admins
configure through the API (``/api/v1/environments/{slug}/policy``, ``/api/v1/freezes``,
``/api/v1/roles``), where their role is checked.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin

from releases.admin.common import ReadOnlyAdmin
from releases.admin.governed import GovernanceReadOnlyAdmin
from releases.models import (
    Approval,
    EnvironmentPolicy,
    FreezeOverride,
    FreezeWindow,
    LoginFailure,
    RoleBinding,
)


@admin.register(RoleBinding)
class RoleBindingAdmin(GovernanceReadOnlyAdmin):
    audit_name = "role"
    list_display = ("__str__", "role", "user", "group", "environment", "service", "created_at")
    list_filter = ("role", "environment", "service")
    list_select_related = ("user", "group", "environment", "service")
    search_fields = ("user__username", "group__name")
    fields = ("user", "group", "environment", "service", "role")


POLICY_FIELDS = (
    "environment",
    "required_approvals",
    "approver_role",
    "allow_self_approval",
    "approval_ttl",
    "step_approvals",
)


class EnvironmentPolicyForm(forms.ModelForm):
    class Meta:
        model = EnvironmentPolicy
        fields = POLICY_FIELDS


@admin.register(EnvironmentPolicy)
class EnvironmentPolicyAdmin(GovernanceReadOnlyAdmin):
    form = EnvironmentPolicyForm
    audit_name = "policy"
    list_display = POLICY_FIELDS
    list_select_related = ("environment",)


@admin.register(FreezeWindow)
class FreezeWindowAdmin(GovernanceReadOnlyAdmin):
    audit_name = "freeze"
    list_display = ("name", "environment", "service", "kind", "when", "enabled", "reason")
    list_filter = ("environment", "kind", "enabled")
    list_select_related = ("environment", "service")
    search_fields = ("name", "reason")
    fieldsets = (
        (None, {"fields": ("name", "environment", "service", "reason", "enabled", "kind")}),
        ("One-off", {"fields": ("starts_at", "ends_at")}),
        ("Weekly", {"fields": ("weekdays", "start_time", "end_time")}),
        ("Cron", {"fields": ("cron", "duration")}),
        (None, {"fields": ("timezone",)}),
    )

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    list_display = ("deployment", "actor_name", "decision", "step_index", "role", "created_at")
    list_filter = ("decision", "role")
    list_select_related = ("deployment",)


@admin.register(FreezeOverride)
class FreezeOverrideAdmin(ReadOnlyAdmin):
    list_display = ("deployment", "window_name", "actor_name", "reason", "created_at")
    list_select_related = ("deployment",)


@admin.register(LoginFailure)
class LoginFailureAdmin(ReadOnlyAdmin):
    list_display = ("username", "address", "created_at")
    search_fields = ("username", "address")

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser  # lets a superuser lift a throttle
