"""Freeze windows: when each kind is in force (``releases.models.schedule``, pure), and what a
freeze
blocks through ``releases.actions`` (new deployments, automatic promotions) and what it never
blocks (rollbacks, aborts), with the admin override."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from releases import actions
from releases.errors import Forbidden, Frozen, InvalidRequest
from releases.governance import freezes
from releases.models import AuditEvent, DeploymentEvent, FreezeOverride, State, schedule
from tests import factories

PARIS = ZoneInfo("Europe/Paris")


def window(kind, **fields):
    base = dict(
        kind=kind,
        starts_at=None,
        ends_at=None,
        weekdays=[],
        start_time=None,
        end_time=None,
        cron="",
        duration=None,
        timezone="UTC",
    )
    return SimpleNamespace(**{**base, **fields})


def at(*args, tz=UTC):
    return datetime(*args, tzinfo=tz)


# --- one-off ----------------------------------------------------------------------------------


def test_a_one_off_window_is_in_force_from_its_start_until_its_end():
    w = window("one_off", starts_at=at(2025, 12, 20), ends_at=at(2026, 1, 5))

    assert schedule.interval_at(w, at(2025, 12, 19, 23, 59)) is None
    assert schedule.interval_at(w, at(2025, 12, 20)) == (at(2025, 12, 20), at(2026, 1, 5))
    assert schedule.active_until(w, at(2025, 12, 31, 12)) == at(2026, 1, 5)
    assert schedule.interval_at(w, at(2026, 1, 5)) is None  # the end is not included


# --- weekly -----------------------------------------------------------------------------------


def test_a_weekly_window_runs_in_its_own_time_zone():
    # Fridays from 16:00 to 23:00 in Paris (UTC+1 in winter)
    w = window(
        "weekly", weekdays=[4], start_time=time(16), end_time=time(23), timezone="Europe/Paris"
    )
    friday = at(2025, 1, 10, 15, 30)  # 16:30 in Paris

    assert schedule.active_until(w, friday) == at(2025, 1, 10, 22)
    assert schedule.interval_at(w, at(2025, 1, 10, 14, 59)) is None  # 15:59 in Paris
    assert schedule.interval_at(w, at(2025, 1, 9, 15, 30)) is None  # a Thursday


def test_a_weekly_window_ending_before_it_starts_runs_past_midnight():
    w = window("weekly", weekdays=[4], start_time=time(18), end_time=time(8))

    assert schedule.active_until(w, at(2025, 1, 11, 7)) == at(2025, 1, 11, 8)  # Saturday 07:00
    assert schedule.interval_at(w, at(2025, 1, 11, 8)) is None


def test_whole_days_that_touch_are_one_freeze():
    weekend = window("weekly", weekdays=[5, 6], start_time=time(0), end_time=time(0))

    assert schedule.active_until(weekend, at(2025, 1, 11, 10)) == at(2025, 1, 13)  # Monday 00:00
    assert schedule.interval_at(weekend, at(2025, 1, 13, 0, 1)) is None


def test_a_weekly_window_follows_daylight_saving_time():
    # 09:00-17:00 on Mondays in Paris is 08:00 UTC in winter and 07:00 UTC in summer
    w = window(
        "weekly", weekdays=[0], start_time=time(9), end_time=time(17), timezone="Europe/Paris"
    )

    assert schedule.interval_at(w, at(2025, 1, 6, 8, 0)) is not None
    assert schedule.interval_at(w, at(2025, 7, 7, 7, 0)) is not None
    assert schedule.interval_at(w, at(2025, 7, 7, 6, 59)) is None


# --- cron -------------------------------------------------------------------------------------


def test_a_cron_window_without_a_duration_is_its_matching_minutes():
    w = window("cron", cron="* 16-23 * * FRI", timezone="Europe/Paris")

    assert schedule.active_until(w, at(2025, 1, 10, 15, 0)) == at(2025, 1, 10, 23)  # midnight Paris
    assert schedule.interval_at(w, at(2025, 1, 10, 14, 59)) is None
    assert schedule.interval_at(w, at(2025, 1, 11, 15, 0)) is None  # Saturday


def test_a_cron_window_with_a_duration_opens_at_each_match():
    # Friday 16:00 for 64 hours: until Monday 08:00
    w = window("cron", cron="0 16 * * 5", duration=timedelta(hours=64))

    assert schedule.interval_at(w, at(2025, 1, 10, 15, 59)) is None
    assert schedule.active_until(w, at(2025, 1, 12, 12)) == at(2025, 1, 13, 8)
    assert schedule.interval_at(w, at(2025, 1, 13, 8)) is None


@pytest.mark.parametrize(
    ("expression", "moment", "expected"),
    [
        ("*/15 * * * *", at(2025, 3, 1, 10, 45), True),
        ("*/15 * * * *", at(2025, 3, 1, 10, 46), False),
        ("0 9-17/2 * * MON-FRI", at(2025, 3, 3, 11, 0), True),  # a Monday
        ("0 9-17/2 * * MON-FRI", at(2025, 3, 3, 12, 0), False),
        ("30 0 1 JAN *", at(2025, 1, 1, 0, 30), True),
        ("* * 13 * 5", at(2025, 6, 13, 8, 0), True),  # the 13th (either day field matches)
        ("* * 13 * 5", at(2025, 6, 20, 8, 0), True),  # a Friday
        ("* * 13 * 5", at(2025, 6, 19, 8, 0), False),
        ("* * * * 0", at(2025, 6, 22, 8, 0), True),  # Sunday as 0
        ("* * * * 7", at(2025, 6, 22, 8, 0), True),  # and as 7
    ],
)
def test_the_cron_matcher(expression, moment, expected):
    assert schedule.Cron.parse(expression).matches(moment) is expected


@pytest.mark.parametrize(
    "expression", ["", "* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "5-1 * * * *", "x"]
)
def test_it_refuses_a_bad_cron_expression(expression):
    with pytest.raises(schedule.FreezeError):
        schedule.Cron.parse(expression)


def test_validation_names_each_bad_field():
    problems = schedule.validate(
        window("cron", cron="* * *", duration=timedelta(days=9), timezone="Mars/Olympus")
    )

    assert {field for field, _ in problems} == {"timezone", "cron", "duration"}
    assert schedule.validate(window("weekly", weekdays=[7]))[0][0] == "weekdays"
    assert schedule.validate(
        window("one_off", starts_at=at(2025, 1, 2), ends_at=at(2025, 1, 1))
    ) == [("ends_at", "must be after the start")]


# --- what a freeze blocks ---------------------------------------------------------------------


@pytest.fixture
def prod_target(service, prod):
    return factories.make_target(service, prod)


@pytest.fixture
def deployer(prod):
    return factories.make_persona("deployer", prod)


def start(actor, target, version="1.1.0", **kwargs):
    factories.make_release(target.service, version)
    return actions.start_deployment(
        actor,
        service=target.service,
        environment=target.environment,
        version=version,
        **kwargs,
    )[0]


@pytest.mark.django_db
def test_a_freeze_blocks_a_new_deployment_and_names_the_window(prod_target, deployer):
    factories.make_freeze(prod_target.environment, name="Black Friday", reason="peak traffic")

    with pytest.raises(Frozen) as caught:
        start(factories.api_actor(deployer), prod_target)

    assert "'Black Friday'" in caught.value.message and "peak traffic" in caught.value.message
    assert caught.value.code == "frozen" and caught.value.status == 409
    assert caught.value.details["window"]["name"] == "Black Friday"
    assert not prod_target.deployments.exists()


@pytest.mark.django_db
def test_a_freeze_of_one_service_leaves_the_others_free(prod_target, deployer, prod):
    other = factories.make_service("web")
    factories.make_freeze(prod, service=other)

    assert start(factories.api_actor(deployer), prod_target).state == State.PENDING


@pytest.mark.django_db
def test_a_disabled_or_past_window_blocks_nothing(prod_target, deployer, prod):
    factories.make_freeze(prod, enabled=False)
    now = datetime.now(UTC)
    factories.make_freeze(prod, starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1))

    assert start(factories.api_actor(deployer), prod_target).state == State.PENDING


@pytest.mark.django_db
def test_a_freeze_never_blocks_a_rollback_or_an_abort(prod_target, deployer):
    actor = factories.api_actor(deployer)
    finish(start(actor, prod_target, "1.0.0"), State.SUCCEEDED)
    shipped = start(actor, prod_target, "1.1.0")
    finish(shipped, State.SUCCEEDED)
    live = start(actor, prod_target, "1.2.0")
    factories.make_freeze(prod_target.environment)

    actions.abort(actor, live.pk)  # not blocked
    live.refresh_from_db()
    assert live.state == State.ROLLING_BACK
    finish(live, State.ABORTED)
    back = actions.rollback(actor, shipped.pk)  # a new deployment of the previous release

    assert back.pk != shipped.pk and back.rollback_of_id == shipped.pk
    assert back.state == State.PENDING and back.release.version == "1.0.0"
    assert freezes.promotion_freeze(back) is None  # and its promotions are not held either


def finish(d, state):
    d.refresh_from_db()
    if d.state == State.PENDING:
        assert actions.mark_started(d)
    assert actions.record_tick(
        d,
        observed={},
        endpoint="",
        progress={},
        step_index=0,
        step="",
        weights={},
        message="",
        new_events=[],
        new_state=state,
    )
    d.refresh_from_db()


@pytest.mark.django_db
def test_an_admin_overrides_a_freeze_with_a_written_reason(prod_target, admin):
    factories.make_freeze(prod_target.environment, name="Year end")
    actor = factories.api_actor(admin)

    with pytest.raises(InvalidRequest, match="needs a written reason"):
        start(actor, prod_target, override_freeze="   ")
    d = start(actor, prod_target, override_freeze="security fix CVE-2025-1234")

    assert d.state == State.PENDING
    override = FreezeOverride.objects.get(deployment=d)
    assert (override.window_name, override.reason) == ("Year end", "security fix CVE-2025-1234")
    audit = AuditEvent.objects.get(action="deployment.freeze_override")
    assert audit.object_id == str(d.pk) and audit.data["reason"] == "security fix CVE-2025-1234"
    assert audit.actor_name.startswith("admin")
    assert DeploymentEvent.objects.filter(deployment=d, kind="freeze_override").exists()
    assert freezes.promotion_freeze(d) is None  # the override holds for its promotions


@pytest.mark.django_db
def test_only_an_admin_may_override_a_freeze(prod_target, deployer):
    factories.make_freeze(prod_target.environment)

    with pytest.raises(Forbidden, match="Only an admin"):
        start(factories.api_actor(deployer), prod_target, override_freeze="I am in a hurry")
    assert not FreezeOverride.objects.exists()
    assert not AuditEvent.objects.filter(action="deployment.freeze_override").exists()


@pytest.mark.django_db
def test_automatic_promotions_are_held_during_a_freeze(prod_target, deployer):
    d = start(factories.api_actor(deployer), prod_target)
    assert freezes.promotion_freeze(d) is None
    window = factories.make_freeze(prod_target.environment, name="Incident 42")

    held = freezes.promotion_freeze(d)

    assert held is not None and held.window == window
    assert "Incident 42" in held.message


@pytest.mark.django_db
def test_a_recurring_window_blocks_in_its_time_zone(prod_target, deployer):
    now = datetime.now(PARIS)
    factories.make_freeze(
        prod_target.environment,
        name="always on this weekday",
        kind="weekly",
        weekdays=[now.weekday()],
        start_time=time(0),
        end_time=time(0),
        timezone="Europe/Paris",
    )

    with pytest.raises(Frozen, match="always on this weekday"):
        start(factories.api_actor(deployer), prod_target)
