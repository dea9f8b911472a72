"""The audit log page: filters, and the JSON lines export."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.urls import reverse
from django.utils import timezone

from releases import actions
from releases.models import AuditEvent
from tests import factories
from tests.releases.web.test_views_common import ship, ui_actor

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_in(admin, client):
    client.force_login(admin)
    return client


@pytest.fixture
def trail(service, dev, prod, admin):
    """Audit events about api in dev and prod, and about web in prod, by two people."""
    ship(factories.make_target(service, dev), "1.0.0")
    prod_api = factories.make_deployment(factories.make_target(service, prod), "1.0.0")
    actions.pause(ui_actor(admin), prod_api.pk)
    bob = factories.make_persona("bob", role="deployer")
    web = factories.make_deployment(
        factories.make_target(factories.make_service("web"), prod), "2.0.0"
    )
    actions.abort(ui_actor(bob), web.pk, reason="wrong build")
    return {"prod_api": prod_api, "web": web}


def body(response) -> bytes:
    """All of a streamed response (its body is an async iterator)."""

    async def collect():
        return b"".join([part async for part in response.streaming_content])

    return async_to_sync(collect)()


def rows(client, **query) -> set[int]:
    html = client.get(reverse("audit"), query).content.decode()
    return {a.pk for a in AuditEvent.objects.all() if f'data-audit-row="{a.pk}"' in html}


def ids(**filters) -> set[int]:
    return set(AuditEvent.objects.filter(**filters).values_list("pk", flat=True))


def test_the_audit_log_lists_everything_newest_first(client_in, trail):
    html = client_in.get(reverse("audit")).content.decode()
    newest, oldest = AuditEvent.objects.order_by("-id")[0], AuditEvent.objects.order_by("id")[0]
    assert html.index(f'data-audit-row="{newest.pk}"') < html.index(f'data-audit-row="{oldest.pk}"')
    assert "deployment.abort" in html and "wrong build" in html


def test_the_audit_log_filters_by_actor_and_action(client_in, trail):
    assert rows(client_in, actor="bob") == ids(actor_name="bob")
    assert rows(client_in, action="deployment.pause") == ids(action="deployment.pause")
    assert rows(client_in, actor="bob", action="deployment.pause") == set()


def test_the_audit_log_filters_by_service_and_environment(client_in, trail):
    web = trail["web"]
    about_web = ids(object_type="deployment", object_id=str(web.pk)) | ids(
        object_type="release", object_id=str(web.release_id)
    )
    assert rows(client_in, service="web") == about_web
    prod_deployments = {str(trail["prod_api"].pk), str(web.pk)}
    assert rows(client_in, environment="prod") == ids(
        object_type="deployment", object_id__in=prod_deployments
    )
    assert rows(client_in, service="api", environment="prod") == ids(
        object_type="deployment", object_id=str(trail["prod_api"].pk)
    )


def test_the_audit_log_filters_by_time(client_in, trail):
    def moment(delta):
        return (timezone.now() + delta).strftime("%Y-%m-%dT%H:%M")

    assert rows(client_in, **{"from": moment(-timedelta(hours=1))}) == ids()
    assert rows(client_in, **{"from": moment(timedelta(hours=1))}) == set()
    assert rows(client_in, to=moment(-timedelta(hours=1))) == set()
    assert rows(client_in, to=moment(timedelta(hours=1)), actor="bob") == ids(actor_name="bob")


def test_the_export_is_the_same_selection_as_json_lines(client_in, trail):
    response = client_in.get(reverse("audit-export"), {"environment": "prod"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/jsonl")
    assert "attachment;" in response["Content-Disposition"]
    lines = body(response).decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == sorted(rows(client_in, environment="prod"))
    abort = next(r for r in records if r["action"] == "deployment.abort")
    assert abort["actor"] == "bob" and abort["channel"] == "ui"
    assert abort["data"] == {"reason": "wrong build"}
    assert set(abort) == {
        "id",
        "time",
        "actor",
        "channel",
        "action",
        "object_type",
        "object_id",
        "object",
        "data",
        "source_address",
    }


def test_the_audit_log_needs_a_signed_in_user(client, trail):
    assert client.get(reverse("audit")).status_code == 302
    assert client.get(reverse("audit-export")).status_code == 302
