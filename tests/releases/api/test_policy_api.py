"""Governance through the REST API: an environment's admins set its approval policy, freeze
windows and roles; approvers approve and reject with a comment; the deployment shows its
approvals and any freeze override."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from releases.governance import tokens
from releases.models import AuditEvent, EnvironmentPolicy, FreezeWindow, RoleBinding, State
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def prod_target(service, prod):
    target = factories.make_target(service, prod)
    factories.make_release(service, "1.0.0")
    return target


def caller(user):
    token = tokens.create(user, "t")[1]

    def call(method, path, body=None):
        return Client().generic(
            method,
            "/api/v1" + path,
            data=json.dumps(body) if body is not None else "",
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )

    return call


def deploy(call, env="prod", service="api", **extra):
    body = {"service": service, "environment": env, "version": "1.0.0", **extra}
    return call("POST", "/deployments", body)


# --- policy -----------------------------------------------------------------------------------


def test_an_environment_admin_sets_its_policy_and_it_applies(prod_target, prod):
    boss = caller(factories.make_persona("admin", prod))
    deployer = caller(factories.make_persona("deployer", prod))

    response = boss(
        "PUT",
        "/environments/prod/policy",
        {"required_approvals": 2, "approval_ttl_seconds": 3600, "step_approvals": [2]},
    )

    assert response.status_code == 200, response.content
    assert response.json()["required_approvals"] == 2
    assert deploy(deployer).json()["state"] == State.AWAITING_APPROVAL
    event = AuditEvent.objects.get(action="policy.update")
    assert event.before is None and event.data["approval_ttl_seconds"] == 3600
    assert deployer("GET", "/environments/prod/policy").json()["step_approvals"] == [2]
    assert deployer("PUT", "/environments/prod/policy", {}).status_code == 403
    assert (
        caller(factories.make_persona("outsider"))(
            "PUT", "/environments/prod/policy", {}
        ).status_code
        == 404
    )
    assert EnvironmentPolicy.objects.get().required_approvals == 2


def test_approve_and_reject_through_the_api_with_a_comment(prod_target, prod):
    factories.make_policy(prod, required_approvals=1)
    deployer = caller(factories.make_persona("deployer", prod))
    approver = caller(factories.make_persona("approver", prod))
    first = deploy(deployer).json()

    approved = approver("POST", f"/deployments/{first['id']}/approve", {"comment": "ship it"})
    assert approved.status_code == 202 and approved.json()["state"] == State.PENDING
    listing = approver("GET", f"/deployments/{first['id']}/approvals").json()
    assert listing["status"]["satisfied"] is True
    assert [(a["by"], a["decision"], a["comment"]) for a in listing["items"]] == [
        ("approver (t)", "approve", "ship it")
    ]
    web = factories.make_service("web")
    factories.make_target(web, prod)
    factories.make_release(web, "1.0.0")
    second = deploy(deployer, service="web").json()
    own = deployer("POST", f"/deployments/{second['id']}/approve")
    assert own.status_code == 403  # a deployer may not approve at all
    rejected = approver("POST", f"/deployments/{second['id']}/reject", {"comment": "not today"})
    assert rejected.status_code == 202 and rejected.json()["state"] == State.REJECTED
    again = approver("POST", f"/deployments/{second['id']}/approve")
    assert again.status_code == 409 and again.json()["code"] == "conflict"


def test_self_approval_through_the_api_is_403_self_approval(prod_target, prod):
    factories.make_policy(prod, required_approvals=1)
    approver = caller(factories.make_persona("approver", prod))
    d = deploy(approver).json()

    response = approver("POST", f"/deployments/{d['id']}/approve")

    assert response.status_code == 403 and response.json()["code"] == "self_approval"


def test_promote_before_approval_is_409_approval_required(prod_target, prod):
    factories.make_policy(prod, required_approvals=1)
    deployer = caller(factories.make_persona("deployer", prod))
    d = deploy(deployer).json()

    response = deployer("POST", f"/deployments/{d['id']}/promote")

    assert response.status_code == 409 and response.json()["code"] == "approval_required"


# --- freezes ----------------------------------------------------------------------------------


def test_an_admin_freezes_an_environment_and_lifts_it(prod_target, prod):
    boss = caller(factories.make_persona("admin", prod))
    deployer = caller(factories.make_persona("deployer", prod))
    now = timezone.now()

    created = boss(
        "POST",
        "/freezes",
        {
            "name": "Migration",
            "environment": "prod",
            "reason": "database migration",
            "starts_at": (now - timedelta(minutes=5)).isoformat(),
            "ends_at": (now + timedelta(hours=2)).isoformat(),
        },
    )
    assert created.status_code == 201, created.content
    window = created.json()
    assert window["active"] is True and window["until"]

    refused = deploy(deployer)
    assert refused.status_code == 409 and refused.json()["code"] == "frozen"
    assert refused.json()["details"]["window"]["id"] == window["id"]
    assert "Migration" in refused.json()["message"]
    assert [w["id"] for w in deployer("GET", "/freezes?active=true").json()["items"]] == [
        window["id"]
    ]

    assert deployer("PATCH", f"/freezes/{window['id']}", {"enabled": False}).status_code == 403
    lifted = boss("PATCH", f"/freezes/{window['id']}", {"enabled": False})
    assert lifted.status_code == 200 and lifted.json()["active"] is False
    assert deploy(deployer).status_code == 201
    assert AuditEvent.objects.get(action="freeze.update").before["enabled"] is True
    assert boss("DELETE", f"/freezes/{window['id']}").status_code == 204
    assert not FreezeWindow.objects.exists()
    assert AuditEvent.objects.filter(action="freeze.delete").exists()


def test_a_recurring_freeze_takes_local_times_and_rejects_bad_fields(prod_target, prod):
    boss = caller(factories.make_persona("admin", prod))

    bad = boss(
        "POST",
        "/freezes",
        {
            "name": "x",
            "environment": "prod",
            "reason": "y",
            "kind": "cron",
            "cron": "* * * *",
            "timezone": "Nowhere/Special",
        },
    )
    weekly = boss(
        "POST",
        "/freezes",
        {
            "name": "Fridays",
            "environment": "prod",
            "reason": "no deploys before the weekend",
            "kind": "weekly",
            "weekdays": [4],
            "start_time": "16:00",
            "end_time": "00:00",
            "timezone": "Europe/Paris",
        },
    )

    assert bad.status_code == 422
    assert {e["path"] for e in bad.json()["details"]["errors"]} == {"cron", "timezone"}
    assert weekly.status_code == 201
    assert weekly.json()["when"] == "every Fri 16:00–00:00 (Europe/Paris)"


def test_a_one_off_window_without_an_offset_is_in_its_time_zone(prod_target, prod):
    boss = caller(factories.make_persona("admin", prod))

    created = boss(
        "POST",
        "/freezes",
        {
            "name": "Sale",
            "environment": "prod",
            "reason": "sale",
            "starts_at": "2030-11-29T00:00:00",
            "ends_at": "2030-12-02T00:00:00",
            "timezone": "Europe/Paris",
        },
    ).json()

    assert datetime.fromisoformat(created["starts_at"]) == datetime(2030, 11, 28, 23, tzinfo=UTC)
    assert created["starts_at"].startswith("2030-11-28T23:00")  # times are answered in UTC


def test_only_admins_of_the_place_create_freezes(prod_target, prod, dev):
    dev_boss = caller(factories.make_persona("admin", dev))
    body = {"name": "x", "environment": "prod", "reason": "y", "kind": "weekly", "weekdays": [0]}

    assert dev_boss("POST", "/freezes", body).status_code == 404  # prod is not theirs to see
    viewer = caller(factories.make_persona("viewer", prod))
    assert viewer("POST", "/freezes", body).status_code == 403


# --- roles ------------------------------------------------------------------------------------


def test_an_environment_admin_grants_roles_there_only(prod_target, prod):
    boss = caller(factories.make_persona("admin", prod))
    factories.make_user("newcomer", superuser=False, password=None)

    granted = boss(
        "POST", "/roles", {"user": "newcomer", "environment": "prod", "role": "deployer"}
    )
    everywhere = boss("POST", "/roles", {"user": "newcomer", "role": "admin"})

    assert granted.status_code == 201, granted.content
    assert everywhere.status_code == 403
    assert RoleBinding.objects.filter(user__username="newcomer").count() == 1
    listed = boss("GET", "/roles?environment=prod").json()["items"]
    assert {(r["user"], r["role"]) for r in listed} == {
        ("env-admin", "admin"),
        ("newcomer", "deployer"),
    }
    assert boss("DELETE", f"/roles/{granted.json()['id']}").status_code == 204
    assert AuditEvent.objects.filter(action="role.delete").exists()
