"""A tick that hits a bug (any exception but an ``IntegrationError``) is never a silent loop: each
failure is an event naming the error's class and message, the next try backs off with jitter, and
after ``TICK_MAX_FAILURES`` tries in a row the deployment fails -- rolled back where it still can
be -- with that reason. Against a real fleet agent, tick by tick in this process; the bug is
injected into the target's ``status`` (a ``KeyError`` the way a provider bug would raise one)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from releases.models import Deployment, DeploymentEvent, State
from releases.reconcile import tick
from tests.releases.reconcile import test_reconcile_switch as switch
from tests.releases.reconcile.test_reconcile_switch import FAST_HEALTH, deploy, live, tick_until

agent, fleet = switch.agent, switch.fleet  # the real fleet agent fixtures

ROLLING = {"kind": "rolling", "replicas": 2, "batch_size": 1, "health": FAST_HEALTH}


class Buggy:
    """The real target, whose ``status`` raises while ``broken`` is set (a provider bug)."""

    def __init__(self, inner):
        self.inner = inner
        self.broken = False

    def status(self):
        if self.broken:
            raise KeyError("slots")
        return self.inner.status()

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
def buggy(fleet, monkeypatch):
    target = Buggy(fleet)
    monkeypatch.setattr(tick, "integration_for", lambda row: target)
    return target


def started(target, version="2.0.0"):
    d = deploy(target, version, ROLLING)
    return tick_until(d, lambda d: d.state == State.PROGRESSING, what="the start")


def errors(d):
    return list(DeploymentEvent.objects.filter(deployment=d, kind="error").order_by("id"))


def test_a_tick_that_hits_a_bug_records_the_error_and_backs_off(target, buggy, settings):
    settings.TICK_MAX_FAILURES = 5
    live(target)
    d = started(target)
    buggy.broken = True
    before = timezone.now()
    result = tick.tick(d.pk)
    d.refresh_from_db()
    assert result.ran and result.wait is not None and result.wait > 0
    assert d.state == State.PROGRESSING
    assert d.tick_failures == 1
    assert "KeyError" in d.message and "'slots'" in d.message
    (event,) = errors(d)
    assert event.data["error"] == "KeyError"
    assert event.data["attempt"] == 1 and event.data["max_attempts"] == 5
    assert "'slots'" in event.message
    # the sweep leaves it alone until the backoff is over (no re-enqueue every few seconds)
    assert d.next_tick_at >= before + timedelta(seconds=result.wait * 0.99)


def test_the_deployment_page_shows_the_error_of_a_failed_tick(target, buggy, admin, client):
    live(target)
    d = started(target)
    buggy.broken = True
    tick.tick(d.pk)
    client.force_login(admin)
    page = client.get(reverse("deployment", args=[d.pk])).content.decode()
    assert "tick failed (1 of 5), retrying: KeyError: &#x27;slots&#x27;" in page  # the summary
    assert "tick 1 of 5 failed: KeyError: &#x27;slots&#x27;" in page  # the event list


def test_the_backoff_grows_with_jitter_within_its_bounds(target, buggy, settings):
    settings.TICK_MAX_FAILURES = 6
    settings.TICK_BACKOFF_BASE = 1.0
    settings.TICK_BACKOFF_MAX = 8.0
    live(target)
    d = started(target)
    buggy.broken = True
    waits = [tick.tick(d.pk).wait for _ in range(5)]
    for attempt, wait in enumerate(waits, start=1):
        ceiling = min(8.0, 1.0 * 2 ** (attempt - 1))
        assert ceiling / 2 <= wait <= ceiling, (attempt, wait)
    assert len(set(waits)) > 1
    d.refresh_from_db()
    assert [e.data["attempt"] for e in errors(d)] == [1, 2, 3, 4, 5]


def test_a_tick_that_recovers_starts_counting_again(target, buggy, settings):
    settings.TICK_MAX_FAILURES = 3
    live(target)
    d = started(target)
    buggy.broken = True
    tick.tick(d.pk)
    tick.tick(d.pk)
    buggy.broken = False
    tick.tick(d.pk)
    d.refresh_from_db()
    assert d.tick_failures == 0
    buggy.broken = True
    tick.tick(d.pk)
    tick.tick(d.pk)
    d.refresh_from_db()
    assert d.state == State.PROGRESSING  # 2 in a row, not 4 in all


def test_after_the_last_attempt_the_deployment_fails_and_rolls_back_with_the_reason(
    target, buggy, fleet, settings
):
    settings.TICK_MAX_FAILURES = 3
    live(target)
    d = started(target)
    tick_until(d, lambda d: d.step_index >= 0 and d.weights.get("canary", 0) > 0, what="batch 1")
    buggy.broken = True
    for _ in range(3):
        tick.tick(d.pk)
    d.refresh_from_db()
    assert d.state == State.ROLLING_BACK
    assert "KeyError" in d.failure_reason and "3 ticks in a row" in d.failure_reason
    assert DeploymentEvent.objects.filter(
        deployment=d, kind="failure", message__contains="KeyError"
    ).exists()
    buggy.broken = False  # the rollback's own ticks work: it completes
    d = tick_until(d, lambda d: d.state == State.FAILED, what="the rollback")
    assert "KeyError" in d.failure_reason
    versions = {s.version for s in fleet.status().slots.values() if s.desired}
    assert versions == {"1.0.0"}


def test_a_rollback_that_keeps_failing_ends_failed_with_the_reason(target, buggy, settings):
    settings.TICK_MAX_FAILURES = 2
    live(target)
    d = started(target)
    buggy.broken = True
    for _ in range(2):
        tick.tick(d.pk)
    d.refresh_from_db()
    assert d.state == State.ROLLING_BACK
    for _ in range(2):
        tick.tick(d.pk)
    d = Deployment.objects.get(pk=d.pk)
    assert d.state == State.FAILED
    assert d.finished_at is not None
    assert "rollback could not complete" in d.failure_reason and "KeyError" in d.failure_reason
    assert tick.tick(d.pk).ran is False  # nothing more to do: no loop
