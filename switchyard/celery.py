"""The Celery app: tasks live in ``releases.reconcile.tasks``; rollback/abort ticks use the
priority queue."""

import os

from celery import Celery
from celery.signals import worker_init
from kombu import Queue

from switchyard import broker

broker.install()  # the worker survives a Redis restart (switchyard/broker.py says why)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "switchyard.settings")

app = Celery("switchyard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("priority"), Queue("default"))
app.autodiscover_tasks(["releases.reconcile", "releases.audit", "flags"])  # their tasks.py


@worker_init.connect
def _pooled_connections(sender=None, **_kwargs):
    """A threads-pool worker takes its database connections from a pool of its own (Django's
    psycopg pool, one connection per pool thread and two spare for the lease heartbeat and the
    main thread; checked before each use, so one that Postgres dropped is replaced rather than
    failing a tick). Celery's Django fix-up closes every connection after every task, whatever
    ``CONN_MAX_AGE`` says (celery 5.7): without a pool that was a new Postgres backend for every
    tick, ~20 a second at 100 canaries (docs/serving.md); with one, "closing" gives the
    connection back. Not for a prefork pool (the fix-up closes a forked child's pool after each
    task), SQLite, or connections already pooled or given an age (``DATABASE_POOL_MAX``,
    ``DATABASE_CONN_MAX_AGE``). Runs before any task opens a connection."""
    from django.db import connections

    db = connections.settings["default"]
    threads = "thread" in str(getattr(sender, "pool_cls", "")).lower()  # "threads", or its class
    options = db.setdefault("OPTIONS", {})
    postgres = db["ENGINE"].endswith("postgresql")
    if not threads or not postgres or "pool" in options or db.get("CONN_MAX_AGE"):
        return
    size = int(getattr(sender, "concurrency", 0) or 8) + 2
    options["pool"] = {"min_size": 1, "max_size": size, "timeout": 10}
    db["CONN_HEALTH_CHECKS"] = True


@worker_init.connect
def _preload_providers(**_kwargs):
    """Before the pool forks: every provider's client library imported once, in the parent."""
    from integrations import registry

    registry.preload()


@worker_init.connect
def _url_resolver(**_kwargs):
    """Before the first task: the URL resolver built (every view and the API's schemas imported),
    as the web processes do in ``switchyard/asgi.py``. A tick's live publish links the deployment
    page (``reverse``), and the first ``reverse`` in a fresh worker took ~1.9 s importing the URL
    configuration, so the first event after a worker start reached open dashboards that late."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018
