"""Delivery figures (``releases.reports.delivery``): each definition, on deployments made through
the
commands and then placed in time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from releases import actions
from releases.models import Deployment, Release, State
from releases.reports import delivery
from tests import factories
from tests.releases.web.test_views_common import tick, ui_actor

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 10, 1, tzinfo=UTC)
START, END = T0, T0 + timedelta(days=30)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def placed(d: Deployment, *, started: datetime | None, finished: datetime) -> Deployment:
    Deployment.objects.filter(pk=d.pk).update(
        created_at=started or finished, started_at=started, finished_at=finished
    )
    d.refresh_from_db()
    return d


def released(service, version: str, at: datetime) -> Release:
    release = factories.make_release(service, version)
    Release.objects.filter(pk=release.pk).update(created_at=at)
    return release


def run(target, version, outcome, *, started, finished, admin=None) -> Deployment:
    """A deployment of ``version`` that ended ``outcome``, placed at ``started``/``finished``."""
    if not Release.objects.filter(service=target.service, version=version).exists():
        released(target.service, version, started or finished)
    d = factories.make_deployment(target, version)
    if outcome == State.SUCCEEDED:
        tick(d, state=State.SUCCEEDED, weights={"stable": 0, "canary": 100})
    elif outcome == State.FAILED:
        tick(d, state=State.ROLLING_BACK, failure="error rate 9% > 5%")
        tick(d, state=State.FAILED)
    elif outcome in (State.ROLLED_BACK, State.ABORTED):
        if started is not None:
            tick(d)
        command = actions.rollback if outcome == State.ROLLED_BACK else actions.abort
        command(ui_actor(admin or factories.make_user("admin")), d.pk, reason="latency")
        tick(d, state=outcome)
    return placed(d, started=started, finished=finished)


def roll_back(d: Deployment, outcome, *, started, finished) -> Deployment:
    """The rollback deployment of a succeeded ``d``, ended ``outcome``."""
    back = actions.rollback(ui_actor(factories.make_user("admin")), d.pk, reason="bad")
    assert back.rollback_of_id == d.pk
    if outcome == State.SUCCEEDED:
        tick(back, state=State.SUCCEEDED, weights={"stable": 0, "canary": 100})
    elif outcome == State.FAILED:
        tick(back, state=State.ROLLING_BACK, failure="crash")
        tick(back, state=State.FAILED)
    if outcome is None:
        return back
    return placed(back, started=started, finished=finished)


def figures(prod, service=None):
    return delivery.delivery_figures(prod, START, END, service)


def test_frequency_counts_changes_that_went_live_in_the_period(target, prod, service):
    prod_target = factories.make_target(service, prod)
    run(prod_target, "0.9", State.SUCCEEDED, started=T0 - minutes(60), finished=T0 - minutes(50))
    for i, day in enumerate((1, 5, 9)):
        at = T0 + timedelta(days=day)
        run(prod_target, f"1.{i}", State.SUCCEEDED, started=at, finished=at + minutes(5))
    run(target, "dev-only", State.SUCCEEDED, started=T0 + minutes(1), finished=T0 + minutes(2))
    f = figures(prod)
    assert f.succeeded == 3
    assert f.per_day == pytest.approx(0.1)
    assert f.per_week == pytest.approx(0.7)


def test_rollback_deployments_are_remedies_not_changes(prod, service):
    t = factories.make_target(service, prod)
    run(t, "1.0", State.SUCCEEDED, started=T0 + minutes(0), finished=T0 + minutes(5))
    bad = run(t, "1.1", State.SUCCEEDED, started=T0 + minutes(10), finished=T0 + minutes(15))
    roll_back(bad, State.SUCCEEDED, started=T0 + minutes(40), finished=T0 + minutes(45))
    f = figures(prod)
    assert (f.changes, f.succeeded, f.failed) == (2, 2, 1)


def test_change_failure_rate_counts_failures_rollbacks_aborts_and_later_rollbacks(prod, service):
    t = factories.make_target(service, prod)
    at = T0 + timedelta(days=1)
    good = run(t, "1.0", State.SUCCEEDED, started=at, finished=at + minutes(5))
    run(t, "1.1", State.FAILED, started=at + minutes(10), finished=at + minutes(12))
    run(t, "1.2", State.ROLLED_BACK, started=at + minutes(20), finished=at + minutes(22))
    run(t, "1.3", State.ABORTED, started=at + minutes(30), finished=at + minutes(31))
    run(t, "1.4", State.ABORTED, started=None, finished=at + minutes(40))  # never started
    assert good.state == State.SUCCEEDED
    later = run(t, "1.5", State.SUCCEEDED, started=at + minutes(50), finished=at + minutes(55))
    roll_back(later, State.SUCCEEDED, started=at + minutes(60), finished=at + minutes(70))
    f = figures(prod)
    assert f.changes == 5  # 1.0, 1.1, 1.2, 1.3, 1.5 (1.4 never reached prod)
    assert f.failed == 4  # 1.1 failed, 1.2 rolled back, 1.3 aborted, 1.5 rolled back later
    assert f.failure_rate == pytest.approx(0.8)


def test_time_to_restore_runs_from_the_start_of_the_change_to_working_traffic(prod, service):
    t = factories.make_target(service, prod)
    at = T0 + timedelta(days=2)
    run(t, "1.0", State.SUCCEEDED, started=at - minutes(30), finished=at - minutes(20))
    # fails by itself: restored when its own rollback finished, 6 minutes after it started
    run(t, "1.1", State.FAILED, started=at, finished=at + minutes(6))
    # succeeds, is rolled back later: restored when the rollback deployment succeeded
    bad = run(t, "1.2", State.SUCCEEDED, started=at + minutes(10), finished=at + minutes(20))
    roll_back(bad, State.SUCCEEDED, started=at + minutes(50), finished=at + minutes(60))
    f = figures(prod)
    assert sorted(f.restore_seconds) == [6 * 60, 50 * 60]
    assert f.median_restore == minutes(28)
    assert f.unrestored == 0


def test_a_fix_forward_restores_when_the_rollback_itself_failed(prod, service):
    t = factories.make_target(service, prod)
    at = T0 + timedelta(days=3)
    run(t, "1.0", State.SUCCEEDED, started=at - minutes(30), finished=at - minutes(20))
    bad = run(t, "1.1", State.SUCCEEDED, started=at, finished=at + minutes(5))
    roll_back(bad, State.FAILED, started=at + minutes(10), finished=at + minutes(12))
    run(t, "1.2", State.SUCCEEDED, started=at + minutes(15), finished=at + minutes(25))
    f = figures(prod)
    assert f.restore_seconds == [25 * 60]  # 1.1 started at +0, 1.2 restored service at +25


def test_a_failure_not_restored_yet_is_counted_apart(prod, service):
    t = factories.make_target(service, prod)
    at = T0 + timedelta(days=4)
    run(t, "1.0", State.SUCCEEDED, started=at - minutes(30), finished=at - minutes(20))
    bad = run(t, "1.1", State.SUCCEEDED, started=at, finished=at + minutes(5))
    roll_back(bad, None, started=None, finished=None)  # still rolling back
    f = figures(prod)
    assert f.failed == 1 and f.unrestored == 1 and f.restore_seconds == []
    assert f.median_restore is None


def test_lead_time_runs_from_release_creation_to_its_first_success_in_the_environment(
    prod, service
):
    t = factories.make_target(service, prod)
    at = T0 + timedelta(days=5)
    released(service, "1.0", at - timedelta(hours=5))
    run(t, "1.0", State.SUCCEEDED, started=at - minutes(10), finished=at)  # 5 h
    released(service, "1.1", at)
    run(t, "1.1", State.SUCCEEDED, started=at + minutes(50), finished=at + minutes(60))  # 1 h
    run(t, "1.0", State.SUCCEEDED, started=at + minutes(70), finished=at + minutes(80))  # again
    released(service, "0.9", T0 - timedelta(days=3))
    run(t, "0.9", State.SUCCEEDED, started=T0 - timedelta(days=2), finished=T0 - timedelta(days=2))
    run(t, "0.9", State.SUCCEEDED, started=at + minutes(90), finished=at + minutes(95))  # before
    f = figures(prod)
    assert sorted(f.lead_seconds) == [3600, 5 * 3600]
    assert f.median_lead == timedelta(hours=3)


def test_figures_are_per_service_when_one_is_chosen(prod, service):
    web = factories.make_service("web")
    t_api, t_web = factories.make_target(service, prod), factories.make_target(web, prod)
    run(t_api, "1.0", State.SUCCEEDED, started=T0 + minutes(1), finished=T0 + minutes(2))
    run(t_web, "7.0", State.FAILED, started=T0 + minutes(1), finished=T0 + minutes(2))
    assert figures(prod, service).failed == 0
    assert figures(prod, web).failed == 1
    assert figures(prod).changes == 2


def test_nothing_in_the_period_gives_empty_figures(prod):
    f = figures(prod)
    assert (f.changes, f.succeeded, f.per_day) == (0, 0, 0)
    assert f.failure_rate is None and f.median_restore is None and f.median_lead is None


def test_outcome_notes_say_why_each_deployment_was_rolled_back(prod, service, admin):
    t = factories.make_target(service, prod)
    at = T0 + timedelta(days=6)
    run(t, "1.0", State.SUCCEEDED, started=at, finished=at + minutes(1))
    failed = run(t, "1.1", State.FAILED, started=at + minutes(2), finished=at + minutes(3))
    rolled = run(t, "1.2", State.ROLLED_BACK, started=at + minutes(4), finished=at + minutes(5))
    later = run(t, "1.3", State.SUCCEEDED, started=at + minutes(6), finished=at + minutes(7))
    back = roll_back(later, State.SUCCEEDED, started=at + minutes(8), finished=at + minutes(9))
    notes = delivery.outcome_notes([failed, rolled, later, back])
    assert notes[failed.pk] == "error rate 9% > 5%"
    assert notes[rolled.pk] == "rolled back by admin: latency"
    assert notes[later.pk] == f"rolled back by #{back.pk} (admin): bad"
    assert notes[back.pk] == f"rollback of #{later.pk}: bad"
