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
def _preload_providers(**_kwargs):
    """Before the pool forks: every provider's client library imported once, in the parent."""
    from integrations import registry

    registry.preload()
