"""The flags management API: every change goes through the actions, with roles per environment
(personas: deployer, viewer, outsider, each with its denied twin) and the audit trail."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from flags import actions, state
from flags.models import Flag, FlagSetting
from releases.governance import tokens
from releases.models import AuditEvent
from tests import factories
from tests.flags.conftest import make_flag

pytestmark = pytest.mark.django_db


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


ROLLOUT = [
    {
        "name": "flexibleRollout",
        "parameters": {"rollout": "10"},
        "constraints": [{"contextName": "plan", "operator": "IN", "values": ["gold"]}],
    }
]


def test_a_deployer_creates_a_flag_and_rolls_it_out_in_their_environment(prod):
    call = caller(factories.make_persona("deployer", prod))
    created = call("POST", "/flags", {"key": "new-checkout", "flag_type": "release"})
    assert created.status_code == 201, created.content
    put = call(
        "PUT", "/flags/new-checkout/environments/prod", {"enabled": True, "strategies": ROLLOUT}
    )
    assert put.status_code == 200, put.content
    body = put.json()
    assert body["serving"] and body["strategies"][0]["parameters"]["groupId"] == "new-checkout"
    step = call("POST", "/flags/new-checkout/environments/prod/rollout", {"percent": 50})
    assert step.json()["strategies"][0]["parameters"]["rollout"] == "50"
    actions_seen = list(
        AuditEvent.objects.filter(action__startswith="flag.")
        .values_list("action", flat=True)
        .order_by("id")
    )
    assert actions_seen == ["flag.create", "flag.strategies", "flag.enable", "flag.strategies"]
    served = state.current(prod.pk).document["features"][0]
    assert served["enabled"] and served["strategies"][0]["parameters"]["rollout"] == "50"


def test_a_deployer_elsewhere_may_not_change_prod(prod, dev, admin):
    make_flag(factories.api_actor(admin), prod)
    call = caller(factories.make_persona("deployer", dev))
    refused = call("PUT", "/flags/checkout/environments/prod", {"enabled": False})
    assert refused.status_code == 404  # they hold no role in prod: it does not exist for them
    assert FlagSetting.objects.get(environment=prod).enabled is True


def test_a_viewer_sees_flags_but_may_not_kill_one(prod, admin):
    make_flag(factories.api_actor(admin), prod)
    call = caller(factories.make_persona("viewer", prod))
    assert call("GET", "/flags/checkout").json()["environments"][0]["serving"] is True
    refused = call("POST", "/flags/checkout/environments/prod/kill", {"reason": "nope"})
    assert refused.status_code == 403 and refused.json()["details"]["needed_role"] == "deployer"


def test_an_outsider_sees_no_flags(prod, admin):
    make_flag(factories.api_actor(admin), prod)
    call = caller(factories.make_persona("outsider"))
    assert call("GET", "/flags").status_code == 404
    assert call("POST", "/flags", {"key": "x"}).status_code == 404


def test_the_kill_switch_turns_a_flag_off_until_restored_and_is_audited(prod):
    deployer = factories.make_persona("deployer", prod)
    flag = make_flag(factories.api_actor(deployer), prod)
    call = caller(deployer)
    killed = call("POST", "/flags/checkout/environments/prod/kill", {"reason": "5xx spike"})
    assert killed.json()["killed"] and not killed.json()["serving"]
    assert not state.current(prod.pk).document["features"][0]["enabled"]
    event = AuditEvent.objects.filter(action="flag.kill").get()
    assert event.data["reason"] == "5xx spike" and event.before["killed"] is False
    call("POST", "/flags/checkout/environments/prod/restore")
    assert FlagSetting.objects.get(flag=flag).serving


def test_invalid_strategies_are_422_with_every_problem(prod, admin):
    make_flag(factories.api_actor(admin), prod)
    call = caller(admin)
    bad = call(
        "PUT",
        "/flags/checkout/environments/prod",
        {
            "strategies": [
                {"name": "flexibleRollout", "parameters": {"rollout": "140"}},
                {
                    "name": "default",
                    "constraints": [{"contextName": "v", "operator": "SEMVER_GT", "value": "v2"}],
                    "segments": [999],
                },
            ]
        },
    )
    assert bad.status_code == 422
    paths = [e["path"] for e in bad.json()["details"]["errors"]]
    assert paths == [
        "strategies[0].parameters.rollout",
        "strategies[1].constraints[0].value",
        "strategies[1].segments",
    ]


def test_a_stale_version_is_a_conflict(prod, admin):
    make_flag(factories.api_actor(admin), prod)
    call = caller(admin)
    version = call("GET", "/flags/checkout").json()["environments"][0]["version"]
    assert (
        call(
            "PUT", "/flags/checkout/environments/prod", {"enabled": False, "version": version}
        ).status_code
        == 200
    )
    late = call("PUT", "/flags/checkout/environments/prod", {"enabled": True, "version": version})
    assert late.status_code == 409


def test_weighted_variants_share_what_fixed_ones_leave(prod, admin):
    make_flag(factories.api_actor(admin), prod, "colour", kind="string", default_value="#000")
    call = caller(admin)
    put = call(
        "PUT",
        "/flags/colour/environments/prod",
        {
            "variants": [
                {"name": "a", "weightType": "fix", "weight": 100},
                {"name": "b"},
                {"name": "c"},
            ]
        },
    )
    assert [v["weight"] for v in put.json()["variants"]] == [100, 450, 450]
    assert (
        call(
            "PUT",
            "/flags/colour/environments/prod",
            {
                "variants": [
                    {"name": "a", "weightType": "fix", "weight": 600},
                    {"name": "b", "weightType": "fix", "weight": 600},
                ]
            },
        ).status_code
        == 422
    )


def test_segments_need_a_deployer_everywhere(prod, admin):
    narrow = caller(factories.make_persona("deployer", prod))
    wide = caller(factories.make_persona("wide", role="deployer"))
    body = {
        "constraints": [
            {
                "contextName": "email",
                "operator": "STR_ENDS_WITH",
                "values": ["@example.com"],
                "caseInsensitive": True,
            }
        ]
    }
    assert narrow("PUT", "/segments/internal", body).status_code == 403
    assert wide("PUT", "/segments/internal", body).status_code == 200


def test_the_stale_report_names_flags_that_outlived_their_type(prod, admin):
    actor = factories.api_actor(admin)
    old = make_flag(actor, prod, "old-release")
    make_flag(actor, prod, "kill-payments", flag_type="kill-switch")
    long_ago = timezone.now() - timedelta(days=60)
    Flag.objects.filter(pk=old.pk).update(created_at=long_ago)
    FlagSetting.objects.filter(flag=old).update(
        changed_at=long_ago, last_evaluated_at=timezone.now()
    )
    report = caller(admin)("GET", "/flags/stale").json()["flags"]
    assert [f["key"] for f in report] == ["old-release"]
    assert "fully on everywhere for 60 days" in report[0]["reasons"][0]


def test_sdk_tokens_need_an_admin_of_the_environment(prod):
    deployer = caller(factories.make_persona("deployer", prod))
    boss = caller(factories.make_persona("admin", prod))
    assert (
        deployer("POST", "/sdk-tokens", {"environment": "prod", "name": "api"}).status_code == 403
    )
    made = boss("POST", "/sdk-tokens", {"environment": "prod", "name": "api"})
    assert made.status_code == 201 and made.json()["token"].startswith("swyf_")


def test_archived_flags_are_no_longer_served(prod, admin):
    flag = make_flag(factories.api_actor(admin), prod)
    actions.archive_flag(factories.api_actor(admin), flag)
    assert state.current(prod.pk).document["features"] == []
