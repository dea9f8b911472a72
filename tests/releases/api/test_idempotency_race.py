"""Idempotency under concurrent retries: two ``POST /deployments`` with the same
``Idempotency-Key`` at the same moment (a CI job retrying on a timeout) both get the one
deployment -- one 201, one 200 -- never a 409 because the winner is now the active deployment.

Real threads, each with its own Postgres connection; a barrier releases them together, for a few
rounds so the race is really run (the loser's path is also driven directly below)."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection
from django.test import Client

from releases import actions
from releases.actions import start
from releases.governance import tokens
from releases.models import Deployment, State
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def post(token, key, results, barrier):
    try:
        barrier.wait()
        response = Client().post(
            "/api/v1/deployments",
            data=json.dumps({"service": "api", "environment": "dev", "version": "1.0.0"}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
        )
        results.append((response.status_code, response.json().get("id")))
    finally:
        connection.close()


def test_concurrent_retries_with_one_key_both_get_the_one_deployment(admin, target):
    factories.make_release(target.service, "1.0.0")
    token = tokens.create(admin, "ci")[1]

    rounds = []
    for n in range(6):
        Deployment.objects.filter(target=target).update(state=State.ABORTED)
        results, barrier = [], threading.Barrier(2)
        threads = [
            threading.Thread(target=post, args=(token, f"retry-{n}", results, barrier))
            for _ in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rounds.append(sorted(results))

    for n, results in enumerate(rounds):
        (first, id1), (second, id2) = results
        assert (first, second) == (200, 201), rounds
        assert id1 == id2 == Deployment.objects.get(idempotency_key=f"retry-{n}").pk


def test_the_loser_of_the_race_is_answered_with_the_winners_deployment(admin, target):
    """What the second request meets once it passed the early look-up: the insert fails on the
    constraints because the winner committed. It must answer (winner, created=False)."""
    factories.make_release(target.service, "1.0.0")
    actor = factories.api_actor(admin)
    winner, created = actions.start_deployment(
        actor, service=target.service, environment=target.environment, version="1.0.0",
        idempotency_key="k1",
    )  # fmt: skip
    release = winner.release

    loser = start.insert_or_replay(
        actor, target=target, release=release, spec=winner.strategy, idempotency_key="k1"
    )

    assert created is True
    assert loser == (winner, False)
