"""Governance fails closed. A freeze window that cannot be evaluated (saved around validation: a
raw insert, an old row, a time zone the server no longer knows) blocks deployments -- with the
reason shown -- until someone fixes or disables it; it is never logged and ignored.

The Django admin is not a second permission system: governance objects (role bindings,
environment policies, freeze windows, API tokens) are read-only there, so a staff user with
``add_rolebinding`` cannot make themselves an environment admin; and every change made through
the admin is in the audit trail.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from releases import audit
from releases.governance import freezes, tokens
from releases.models import ApiToken, AuditEvent, FreezeWindow, RoleBinding
from tests import factories

pytestmark = pytest.mark.django_db


def broken_window(env, **fields) -> FreezeWindow:
    """A weekly window whose time zone does not exist, saved without validation."""
    fields = {"kind": "weekly", "weekdays": [0, 1, 2, 3, 4, 5, 6], "timezone": "Mars/Olympus_Mons",
              **fields}  # fmt: skip
    return FreezeWindow.objects.create(environment=env, name="Broken", reason="quarter", **fields)


def deploy(token, env="dev"):
    return Client().post(
        "/api/v1/deployments",
        data=json.dumps({"service": "api", "environment": env, "version": "1.0.0"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_a_window_that_cannot_be_evaluated_blocks_with_the_reason(admin, target, dev):
    factories.make_release(target.service, "1.0.0")
    broken_window(dev)

    response = deploy(tokens.create(admin, "ci")[1])

    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "frozen"
    assert "Broken" in body["message"] and "cannot be evaluated" in body["message"]
    assert "Mars/Olympus_Mons" in body["message"]
    assert body["details"]["window"]["error"]


def test_it_is_shown_as_a_freeze_in_force(target, dev):
    broken_window(dev)

    active = freezes.active_freeze(target)

    assert active is not None and active.window.name == "Broken"
    assert "fix or disable" in active.message


def test_a_disabled_broken_window_blocks_nothing(admin, target, dev):
    factories.make_release(target.service, "1.0.0")
    broken_window(dev, enabled=False)

    assert deploy(tokens.create(admin, "ci")[1]).status_code == 201


def test_an_admin_may_still_override_it_with_a_reason(admin, target, dev):
    factories.make_release(target.service, "1.0.0")
    broken_window(dev)
    token = tokens.create(admin, "ci")[1]

    response = Client().post(
        "/api/v1/deployments",
        data=json.dumps({"service": "api", "environment": "dev", "version": "1.0.0",
                         "override_freeze": "the window is broken, fixing it next"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip

    assert response.status_code == 201, response.content


# --- the admin ----------------------------------------------------------------------------------


@pytest.fixture
def staff(db):
    """A staff user who was given every Django permission on role bindings -- but no role."""
    user = factories.make_user("staff", superuser=False)
    user.is_staff = True
    user.save()
    for codename in ("add_rolebinding", "change_rolebinding", "view_rolebinding",
                     "add_environmentpolicy", "change_environmentpolicy",
                     "add_freezewindow", "delete_freezewindow", "add_apitoken"):  # fmt: skip
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return user, client


def test_a_staff_user_cannot_make_themselves_an_admin_in_the_admin(staff, prod):
    user, client = staff

    page = client.get("/admin/releases/rolebinding/add/")
    posted = client.post(
        "/admin/releases/rolebinding/add/",
        {"user": user.pk, "role": "admin", "environment": prod.pk},
    )

    assert page.status_code == 403 and posted.status_code == 403
    assert not RoleBinding.objects.filter(user=user).exists()


def test_governance_objects_are_read_only_in_the_admin(prod, admin):
    window = factories.make_freeze(prod)
    root = Client()
    root.force_login(admin)

    for path in ("rolebinding", "environmentpolicy", "freezewindow"):
        assert root.get(f"/admin/releases/{path}/add/").status_code == 403, path
    deleted = root.post(f"/admin/releases/freezewindow/{window.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 403
    assert FreezeWindow.objects.filter(pk=window.pk).exists()
    listing = root.get("/admin/releases/freezewindow/")
    assert listing.status_code == 200 and "governance objects are read-only" in (
        listing.content.decode().lower()
    )


def test_a_staff_user_cannot_mint_a_token_for_someone_else(staff, admin):
    user, client = staff

    client.post("/admin/releases/apitoken/add/", {"user": admin.pk, "name": "mine-now"})
    client.post("/admin/releases/apitoken/add/", {"user": user.pk, "name": "my-own"})

    assert list(ApiToken.objects.values_list("user__username", "name")) == [("staff", "my-own")]


def test_a_staff_user_cannot_join_a_team_or_become_superuser(staff):
    user, client = staff
    user.user_permissions.add(*Permission.objects.filter(codename__in=["change_user", "add_group"]))
    team = Group.objects.create(name="prod-admins")

    client.post(
        f"/admin/auth/user/{user.pk}/change/",
        {"username": "staff", "groups": [team.pk], "is_superuser": "on", "is_staff": "on",
         "is_active": "on", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"},
    )  # fmt: skip
    user.refresh_from_db()

    assert not user.is_superuser and not user.groups.exists()
    assert client.get("/admin/auth/group/add/").status_code == 403


def test_every_admin_change_is_audited(admin):
    client = Client()
    client.force_login(admin)

    service = client.post(
        "/admin/releases/service/add/", {"slug": "billing", "name": "Billing", "team": "money"}
    )
    team = client.post("/admin/auth/group/add/", {"name": "payments"})

    assert service.status_code == team.status_code == 302
    assert AuditEvent.objects.filter(object_type="service", action__endswith="create").exists()
    event = AuditEvent.objects.get(action="admin.add", object_type="group")
    assert (event.object_repr, event.actor_name, event.channel) == ("payments", "admin", "ui")
    assert event.data["via"] == "django admin"
    assert audit.verify().ok
