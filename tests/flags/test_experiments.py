"""Experiments: started and stopped through the API (roles, audit), exposures and conversions
through the SDK-token events endpoint (bounded, JSON errors), looks one closed minute at a time,
the verdict, the sample-ratio check, and the result page."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from django.test import Client

from flags import experiments
from flags.models import Experiment, ExperimentCount
from releases.models import AuditEvent
from tests import factories
from tests.flags.conftest import make_flag
from tests.flags.test_api import caller

pytestmark = pytest.mark.django_db

VARIANTS = [
    {"name": "control", "weight": 500, "weightType": "variable", "stickiness": "default"},
    {"name": "blue", "weight": 500, "weightType": "variable", "stickiness": "default"},
]


@pytest.fixture
def ab(actor, prod):
    return make_flag(actor, prod, flag_type="experiment", variants=VARIANTS)


def post_events(token, events, **kw):
    return Client().post(
        "/experiments/v1/events",
        data=json.dumps({"events": events}) if not isinstance(events, str) else events,
        content_type="application/json",
        headers={"Authorization": token} if token else {},
        **kw,
    )


def feed(experiment, minutes, rates, per_minute=400, split=(0.5, 0.5), seed=1):
    """``minutes`` of traffic after the start: per minute ``per_minute`` users split as
    ``split``, each converting at its variant's rate (a seeded generator)."""
    rng = random.Random(seed)
    names = [v["name"] for v in experiment.variants]
    for m in range(minutes):
        now = experiment.started_at + timedelta(minutes=m, seconds=30)
        events = []
        for name, share, rate in zip(names, split, rates, strict=True):
            n = round(per_minute * share)
            conversions = sum(rng.random() < rate for _ in range(n))
            events.append((experiment.flag.key, name, "exposure", n))
            if conversions:
                events.append((experiment.flag.key, name, "conversion", conversions))
        experiments.ingest(experiment.environment_id, events, now)
    return experiment.started_at + timedelta(minutes=minutes + 2)


def test_a_deployer_starts_an_experiment_and_a_viewer_may_only_read_it(ab, prod):
    viewer = caller(factories.make_persona("viewer", prod))
    assert (
        viewer(
            "POST", "/flags/checkout/environments/prod/experiment", {"control": "control"}
        ).status_code
        == 403
    )
    deployer = caller(factories.make_persona("deployer", prod))
    bad = deployer("POST", "/flags/checkout/environments/prod/experiment", {"control": "red"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_request"
    started = deployer(
        "POST",
        "/flags/checkout/environments/prod/experiment",
        {"control": "control", "goal": "checkout completed", "mde": 0.1},
    )
    assert started.status_code == 201, started.content
    body = started.json()
    assert body["state"] == "running" and body["verdict"]["state"] == "inconclusive"
    assert [v["name"] for v in body["variants"]] == ["control", "blue"]
    again = deployer("POST", "/flags/checkout/environments/prod/experiment", {"control": "control"})
    assert again.status_code == 409
    assert viewer("GET", "/flags/checkout/environments/prod/experiment").status_code == 200
    stopped = deployer("POST", "/flags/checkout/environments/prod/experiment/stop")
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"flag.experiment.start", "flag.experiment.stop"} <= actions


def test_a_flag_without_two_variants_has_no_experiment(actor, prod):
    make_flag(actor, prod, key="plain")
    call = caller(factories.make_persona("deployer", prod))
    answer = call("POST", "/flags/plain/environments/prod/experiment", {"control": "on"})
    assert answer.status_code == 400 and "two variants" in answer.json()["message"]


def test_the_events_endpoint_counts_per_variant_and_minute(ab, actor, prod, sdk_token):
    experiment = experiments.start(actor, ab, prod, "control")
    answer = post_events(
        sdk_token,
        [
            {"flag": "checkout", "variant": "blue", "type": "exposure"},
            {"flag": "checkout", "variant": "blue", "type": "exposure", "count": 4},
            {"flag": "checkout", "variant": "blue", "type": "conversion"},
            {"flag": "checkout", "variant": "control", "type": "exposure", "count": 5},
            {"flag": "checkout", "variant": "purple", "type": "exposure"},  # not a variant
            {"flag": "other", "variant": "blue", "type": "exposure"},  # no experiment
        ],
    )
    assert answer.status_code == 202, answer.content
    assert answer.json() == {"accepted": 4, "ignored": 2}
    post_events(sdk_token, [{"flag": "checkout", "variant": "blue", "type": "conversion"}])
    rows = {r.variant: (r.exposures, r.conversions) for r in ExperimentCount.objects.all()}
    assert rows == {"blue": (5, 2), "control": (5, 0)}
    assert ExperimentCount.objects.filter(experiment=experiment).count() == 2


def test_the_events_endpoint_refuses_what_it_cannot_count(ab, actor, prod, sdk_token):
    experiments.start(actor, ab, prod, "control")
    assert post_events("", [{"flag": "checkout"}]).status_code == 401
    assert post_events("swyf_nope_nope", []).status_code == 401
    bad = post_events(
        sdk_token,
        [
            {"flag": "checkout", "variant": "blue", "type": "click"},
            {"flag": "checkout", "variant": "x" * 101, "type": "exposure"},
            {"flag": "checkout", "variant": "blue", "type": "exposure", "count": 0},
            {"flag": "checkout", "variant": "blue", "type": "exposure", "extra": 1},
            "not an object",
        ],
    )
    assert bad.status_code == 400
    paths = [e["path"] for e in bad.json()["details"]["errors"]]
    assert paths == [
        "events[0].type",
        "events[1].variant",
        "events[2].count",
        "events[3]",
        "events[4]",
    ]
    too_many = [{"flag": "checkout", "variant": "blue", "type": "exposure"}] * 1001
    assert post_events(sdk_token, too_many).status_code == 400
    assert post_events(sdk_token, "{not json").status_code == 400
    huge = post_events(sdk_token, json.dumps({"events": [], "pad": "x" * 300_000}))
    assert huge.status_code == 400 and huge.json()["code"] == "invalid_request"
    assert not ExperimentCount.objects.exists()  # a bad request counts nothing


def test_a_clear_lift_is_decided_and_kept_with_its_time(ab, actor, prod):
    experiment = experiments.start(actor, ab, prod, "control")
    end = feed(experiment, 30, (0.10, 0.16))
    result = experiments.result(Experiment.objects.get(), end)
    blue = result["variants"][1]
    assert result["verdict"]["state"] == "better", result
    assert blue["verdict"] == "better" and blue["decided_at"] is not None
    assert blue["evidence_better"] >= blue["threshold"]
    assert 0.2 < blue["lift"] < 1.0 and blue["lift_interval"][0] > 0  # as the verdict says
    low, high = blue["odds_ratio_interval"]
    assert 1 <= low and (high is None or low < high)
    control = result["variants"][0]
    assert control["interval"][0] < control["rate"] < control["interval"][1]
    assert result["sample_ratio"]["mismatched"] is False
    decided_at = blue["decided_at"]
    # later looks keep the first verdict's time
    feed(Experiment.objects.get(), 40, (0.10, 0.16), seed=2)
    later = experiments.result(Experiment.objects.get(), end + timedelta(minutes=20))
    assert later["variants"][1]["decided_at"] == decided_at


def test_no_difference_stays_inconclusive_with_an_estimate_of_the_time_needed(ab, actor, prod):
    experiment = experiments.start(actor, ab, prod, "control")
    end = feed(experiment, 20, (0.10, 0.10), per_minute=200)
    result = experiments.result(Experiment.objects.get(), end)
    blue = result["variants"][1]
    assert result["verdict"]["state"] == "inconclusive" and blue["verdict"] == "inconclusive"
    assert blue["exposures_per_hour"] > 0
    # a 5 % lift on a 10 % rate at ~6,000 exposures an hour per arm: hours to days, not never
    assert blue["hours_needed_at_mde"] is not None and blue["hours_needed_at_mde"] > 1


def test_looks_every_minute_and_one_look_at_the_end_agree(ab, actor, prod):
    experiment = experiments.start(actor, ab, prod, "control")
    end = feed(experiment, 15, (0.10, 0.12))
    for m in range(1, 18):
        experiments.look(experiment.pk, experiment.started_at + timedelta(minutes=m))
    often = Experiment.objects.get().sequential
    Experiment.objects.update(sequential={}, looked_until=None, decided={})
    experiments.look(experiment.pk, end)
    assert Experiment.objects.get().sequential == often


def test_a_sample_ratio_mismatch_withholds_the_verdict(ab, actor, prod):
    experiment = experiments.start(actor, ab, prod, "control")
    end = feed(experiment, 20, (0.10, 0.16), split=(0.56, 0.44))
    result = experiments.result(Experiment.objects.get(), end)
    assert result["sample_ratio"]["mismatched"] is True
    assert result["verdict"]["state"] == "sample_ratio_mismatch"
    assert "assignment or logging is broken" in result["verdict"]["message"]


def test_the_result_page_shows_rates_lift_ratio_check_and_verdict(ab, actor, prod):
    experiment = experiments.start(actor, ab, prod, "control", goal="checkout completed")
    Experiment.objects.update(started_at=experiment.started_at - timedelta(minutes=40))
    feed(Experiment.objects.get(), 30, (0.10, 0.16))  # the page looks at the real clock
    client = Client()
    client.force_login(factories.make_persona("viewer", prod))
    assert (
        'href="/flags/checkout/prod/experiment/"' in client.get("/flags/checkout/").content.decode()
    )
    html = client.get("/flags/checkout/prod/experiment/").content.decode()
    assert 'data-verdict="better"' in html
    assert "checkout completed" in html and 'data-variant="blue"' in html
    assert 'data-mismatched="false"' in html and "Chi-square" in html
    assert " %" in html and "to" in html  # rates and their intervals
    outsider = Client()
    outsider.force_login(factories.make_persona("outsider"))
    assert outsider.get("/flags/checkout/prod/experiment/").status_code == 404
    assert client.get("/flags/checkout/dev/experiment/").status_code == 404
