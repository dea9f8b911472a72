"""The Celery app: tasks live in ``releases.reconcile.tasks``; rollback/abort ticks use the
priority queue."""

import os

from celery import Celery
from kombu import Queue

from switchyard import broker

broker.install()  # the worker survives a Redis restart (switchyard/broker.py says why)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "switchyard.settings")

app = Celery("switchyard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("priority"), Queue("default"))
# the tasks are in releases/reconcile/tasks.py since the house moved them ("releases.tasks" is
# gone: autodiscovering it found nothing here, or a stale copy on another sys.path entry)
app.autodiscover_tasks(["releases.reconcile"])
