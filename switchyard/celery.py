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


# seconds a worker thread keeps its database connection between tasks
WORKER_CONN_MAX_AGE = 600


@worker_init.connect
def _persistent_connections(**_kwargs):
    """A worker's threads keep their database connections from task to task (Django's
    ``CONN_MAX_AGE``, with a health check before each task's first query, so a connection that
    Postgres dropped is replaced rather than failing the tick). Celery's Django fix-up otherwise
    closes each connection after every task: at 100 canaries that was a new Postgres backend for
    every tick, ~20 a second (docs/serving.md). Unless the connections are pooled or their age is
    set (``DATABASE_POOL_MAX``, ``DATABASE_CONN_MAX_AGE``). Runs before any task thread opens a
    connection, and in a prefork parent before it forks."""
    from django.db import connections

    db = connections.settings["default"]
    if "pool" in (db.get("OPTIONS") or {}) or db.get("CONN_MAX_AGE"):
        return
    db["CONN_MAX_AGE"] = WORKER_CONN_MAX_AGE
    db["CONN_HEALTH_CHECKS"] = True


@worker_init.connect
def _preload_providers(**_kwargs):
    """Before the pool forks: every provider's client library imported once, in the parent."""
    from integrations import registry

    registry.preload()
