"""Route 53 weighted records through the reconcile loop against a real moto_server process:
DNS-level blue-green and canary (the records' weights and the slots' TXT notes are what is
checked; moto resolves nothing)."""

from __future__ import annotations

import pytest

from releases import actions
from releases.models import State
from tests import factories
from tests.ticks import tick_until


@pytest.fixture
def zone(moto):
    answer = moto.client("route53").create_hosted_zone(Name="example.com", CallerReference="t1")
    return answer["HostedZone"]["Id"].split("/")[-1]


@pytest.fixture
def dns_target(zone, service, dev):
    config = {
        "hosted_zone_id": zone,
        "record_name": "www.example.com",
        "ttl": 30,
        "slots": {"blue": {"value": "blue.example.com"}, "green": {"value": "green.example.com"}},
    }
    return factories.make_target(service, dev, provider="aws-route53", config=config)


def records(moto, zone):
    sets = moto.client("route53").list_resource_record_sets(HostedZoneId=zone)
    return {
        r["SetIdentifier"]: (r["Weight"], r["ResourceRecords"][0]["Value"], r["TTL"])
        for r in sets["ResourceRecordSets"]
        if r.get("SetIdentifier")
    }


def deploy(target, version, strategy):
    factories.make_release(target.service, version, artifact={})
    d, _ = actions.start_deployment(
        factories.api_actor(),
        service=target.service,
        environment=target.environment,
        version=version,
        strategy=strategy,
    )
    return d


def test_a_dns_canary_moves_the_record_weights_and_an_abort_restores_them(
    moto, zone, dns_target, client
):
    first = tick_until(
        deploy(dns_target, "1.0.0", {"kind": "recreate", "replicas": 1}),
        lambda d: d.state == State.SUCCEEDED,
    )
    old = first.canary_slot
    assert records(moto, zone)[f"switchyard-{old}"][0] == 100
    spec = {"kind": "canary", "steps": [{"set_weight": 20}, {"pause": {}}], "stable_replicas": 1}
    d = tick_until(deploy(dns_target, "2.0.0", spec), lambda d: d.state == State.PAUSED)
    new = d.canary_slot
    assert records(moto, zone) == {
        f"switchyard-{old}": (80, f"{old}.example.com", 30),
        f"switchyard-{new}": (20, f"{new}.example.com", 30),
    }
    dns_target.refresh_from_db()
    assert dns_target.endpoint.startswith("dns://www.example.com (TTL 30s: resolvers may keep")
    client.force_login(factories.make_user())
    page = client.get(f"/deployments/{d.pk}/").content.decode()
    assert "TTL 30s: resolvers may keep the old answer" in page  # beside the split
    actions.abort(factories.api_actor(), d.pk, reason="dns canary errors")
    tick_until(d, lambda d: d.state == State.ABORTED, what="aborted")
    assert records(moto, zone)[f"switchyard-{old}"][0] == 100
    assert records(moto, zone)[f"switchyard-{new}"][0] == 0
