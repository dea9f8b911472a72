"""The admin is not a second permission system.

Who may do what is decided by ``releases.governance.policy`` (roles per environment and
service). Django's model permissions are a different, coarser system: a staff user given
``add_rolebinding`` could otherwise make themselves an environment admin, one given
``change_user`` or ``change_group`` could join a team that holds a role, one given
``add_apitoken`` could mint a token that acts as a superuser. So here:

- role bindings, environment policies and freeze windows are **read-only** in the admin
  (:class:`GovernanceReadOnlyAdmin`): they change through the API and the dashboard, where the
  role rules apply (``/api/v1/roles``, ``/api/v1/environments/{slug}/policy``,
  ``/api/v1/freezes``);
- an API token is created in the admin only for the signed-in user themselves;
- team (group) membership, permissions and the staff/superuser flags change only by a
  superuser (who is an admin everywhere anyway, so nothing is escalated);
- **every** admin change is in the audit trail: the admin's own log entries are mirrored into
  it as ``admin.add`` / ``admin.change`` / ``admin.delete`` (models whose admin already audits
  each change, ``AuditedAdmin``, are not recorded twice).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db.models.signals import post_save
from django.dispatch import receiver

from releases import audit
from releases.actors import Actor
from releases.admin.common import AuditedAdmin, ReadOnlyAdmin
from releases.models import Channel

WHERE = (
    "Governance objects are read-only here: change them through the API or the dashboard, where "
    "the role rules apply (roles: /api/v1/roles, policies: /api/v1/environments/<slug>/policy, "
    "freezes: /api/v1/freezes)."
)
SUPERUSER_ONLY_FIELDS = ("is_superuser", "is_staff", "groups", "user_permissions")


class GovernanceReadOnlyAdmin(ReadOnlyAdmin):
    """Listed and viewable, never added, changed or deleted here."""

    def changelist_view(self, request, extra_context=None):
        messages.info(request, WHERE)
        return super().changelist_view(request, extra_context)


class GuardedUserAdmin(UserAdmin):
    """Only a superuser grants teams, permissions, staff or superuser status."""

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return fields
        return fields + SUPERUSER_ONLY_FIELDS


class GuardedGroupAdmin(GroupAdmin):
    """Teams hold roles: only a superuser creates, changes or deletes one."""

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


def guard_auth_admin(site=admin.site) -> None:
    for model, guarded in ((User, GuardedUserAdmin), (Group, GuardedGroupAdmin)):
        if site.is_registered(model):
            site.unregister(model)
        site.register(model, guarded)


VERBS = {ADDITION: "add", CHANGE: "change", DELETION: "delete"}


@receiver(post_save, sender=LogEntry, dispatch_uid="releases.admin.governed.audit_admin_log")
def audit_admin_log(sender, instance: LogEntry, created: bool, **kwargs) -> None:
    """Mirror each admin log entry into the audit trail (same transaction as the change)."""
    if not created or instance.action_flag not in VERBS:
        return
    model = instance.content_type.model_class() if instance.content_type_id else None
    if model is not None and isinstance(admin.site._registry.get(model), AuditedAdmin):
        return  # that admin records each change itself, with the values before
    content_type = instance.content_type
    audit.record(
        Actor(user=instance.user, channel=Channel.UI),
        f"admin.{VERBS[instance.action_flag]}",
        object_type=content_type.model if content_type else "",
        object_id=instance.object_id or "",
        object_repr=instance.object_repr or "",
        data={"via": "django admin", "change": instance.get_change_message()},
    )
