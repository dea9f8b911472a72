"""The target's page: its slots and its rollback window -- the cost (instances of the previous
release held warm), until when, what a rollback does now -- and the button that ends the window
early (role-checked, audited), through Django's test client."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from releases import actions
from releases.models import AuditEvent, Deployment, State
from tests import factories
from tests.releases.web.test_views_common import OBSERVED, ship

pytestmark = pytest.mark.django_db


def succeeded_with_window(target, version="2.0.0", seconds=300) -> Deployment:
    ship(target, "1.0.0")
    d = factories.make_deployment(target, version)
    assert actions.mark_started(d)
    assert actions.record_tick(
        d,
        observed=OBSERVED,
        endpoint="http://127.0.0.1:9101",
        progress={},
        step_index=0,
        step="done",
        weights={"stable": 0, "canary": 100},
        message="rollout done",
        new_events=[],
        new_state=State.SUCCEEDED,
        window_seconds=seconds,
    )
    d.refresh_from_db()
    return d


def page(client, target) -> str:
    url = reverse("target", args=[target.service.slug, target.environment.slug])
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_the_page_shows_what_the_window_holds_until_when_and_the_button(client, admin, target):
    d = succeeded_with_window(target)
    client.force_login(admin)
    html = page(client, target)
    held = OBSERVED[d.stable_slot]["desired"]
    assert f"{held} instance" in html and "of 1.0.0" in html
    assert f"slot {d.stable_slot}" in html and d.window_until.isoformat() in html
    assert "a rollback until then is a switch back" in html
    assert "End window now" in html
    # the deployment page links to it, and its rollback button says it is a switch back
    assert "target and rollback window" in client.get(reverse("deployment", args=[d.pk])).text


def test_a_viewer_sees_the_cost_but_no_button(client, target):
    succeeded_with_window(target)
    client.force_login(factories.make_persona("viewer", target.environment))
    html = page(client, target)
    assert "held warm" in html and "End window now" not in html


def test_the_button_ends_the_window_now_and_it_is_audited(client, admin, target):
    d = succeeded_with_window(target)
    client.force_login(admin)
    url = reverse("target-end-window", args=[target.service.slug, target.environment.slug])
    response = client.post(url, {"reason": "saving cost"})
    assert response.status_code == 302
    d.refresh_from_db()
    assert d.window_until <= timezone.now()
    assert AuditEvent.objects.get(action="deployment.end_window").data["reason"] == "saving cost"
    assert d.pk in actions.due_windows()  # the cleanup retires the slot (asked for at once)


def test_a_viewer_cannot_end_it_by_posting_either(client, target):
    d = succeeded_with_window(target)
    client.force_login(factories.make_persona("viewer", target.environment))
    url = reverse("target-end-window", args=[target.service.slug, target.environment.slug])
    client.post(url)
    d.refresh_from_db()
    assert d.window_until > timezone.now()
    assert not AuditEvent.objects.filter(action="deployment.end_window").exists()


def test_without_a_window_the_page_says_a_rollback_redeploys(client, admin, target):
    ship(target, "1.0.0")
    client.force_login(admin)
    assert "no rollback window open: a rollback now redeploys" in page(client, target).lower()
