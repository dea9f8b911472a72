"""The reconcile loop: a controller tick per deployment, run by Celery workers.

- ``tick``: claim the deployment (a lease by conditional update), read its state and intent, ask
  the pure engine (``strategies.engine``) for the next action, carry it out through the
  target's provider (``releases.targets`` → ``integrations``), record the result through
  ``releases.actions``; never holds a transaction across a provider call;
- ``tasks``: the Celery tasks (``advance_deployment``, ``sweep``, ``cleanup_slot``,
  ``sample_metrics``), thin, by id, safe to run twice; named ``releases.tasks.*`` on the wire;
- ``cleanup``: scaling down a slot kept after a rollback once its time is up;
- ``smoke``: a blue-green preview's smoke checks.

Ticks are asked for through ``releases.queue`` (by task name), so nothing imports this package
to enqueue one. May import: everything below it (actions, analysis, governance, models, live
events, targets, ``integrations``, ``strategies``). Nothing imports it but the Celery app.
"""
