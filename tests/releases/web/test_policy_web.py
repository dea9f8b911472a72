"""Governance on the dashboard: the approvals section, the approve/reject buttons (disabled with
the reason), freeze banners and overrides on a deployment page."""

from __future__ import annotations

import pytest
from django.test import Client

from releases import actions
from releases.models import State
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def prod_target(service, prod):
    factories.make_policy(prod, required_approvals=1, approval_ttl=None)
    return factories.make_target(service, prod)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def start(user, target, **kwargs):
    factories.make_release(target.service, "1.1.0")
    return actions.start_deployment(
        factories.api_actor(user),
        service=target.service,
        environment=target.environment,
        version="1.1.0",
        **kwargs,
    )[0]


def button(html: str, action: str) -> str:
    return html.split(f'data-action="{action}"')[1].split("</form>")[0]


def test_an_approver_approves_from_the_page_with_a_comment(prod_target, prod):
    requester = factories.make_persona("approver", prod)
    d = start(requester, prod_target)
    other = factories.make_persona("approver2", prod, role="approver")

    own_page = signed_in(requester).get(f"/deployments/{d.pk}/").content.decode()
    page = signed_in(other).get(f"/deployments/{d.pk}/").content.decode()

    assert "0 of 1 approvals" in page and "No approvals yet." in page
    assert "disabled" in button(own_page, "approve").split("<button")[1].split(">")[0]
    assert "someone else to approve it" in button(own_page, "approve")
    assert "disabled" not in button(page, "approve").split("<button")[1].split(">")[0]

    response = signed_in(other).post(
        f"/deployments/{d.pk}/approve/", {"reason": "lgtm", "confirmed": "1"}
    )

    assert response.status_code == 302
    d.refresh_from_db()
    assert d.state == State.PENDING
    after = signed_in(other).get(f"/deployments/{d.pk}/").content.decode()
    assert "approver2 (dashboard)" not in after  # the UI actor has no "via"
    assert "<b>approver2</b> approved" in after and "lgtm" in after


def test_a_rejection_from_the_page_ends_the_deployment(prod_target, prod):
    d = start(factories.make_persona("deployer", prod), prod_target)
    approver = factories.make_persona("approver", prod)

    response = signed_in(approver).post(
        f"/deployments/{d.pk}/reject/", {"reason": "wrong version", "confirmed": "1"}
    )

    assert response.status_code == 302
    d.refresh_from_db()
    assert d.state == State.REJECTED
    page = signed_in(approver).get(f"/deployments/{d.pk}/").content.decode()
    assert "rejected" in page and "wrong version" in page


def test_the_page_shows_a_freeze_and_an_admins_override(prod_target, prod, admin):
    factories.make_freeze(prod, name="Peak season", reason="holiday traffic")
    d = start(admin, prod_target, override_freeze="payment outage fix")

    page = signed_in(admin).get(f"/deployments/{d.pk}/").content.decode()

    assert "Frozen:" in page and "Peak season" in page
    assert "Freeze overridden" in page and "payment outage fix" in page


def test_the_release_page_offers_admins_a_freeze_override(prod_target, prod, admin):
    factories.make_freeze(prod, name="Peak season")
    factories.make_release(prod_target.service, "1.1.0")

    page = signed_in(admin).get("/services/api/releases/1.1.0/?env=prod").content.decode()

    assert "Peak season" in page and 'name="override_freeze"' in page
