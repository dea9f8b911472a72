"""Notifications and chat-ops: every deployment heard where the team works, and answered from there.

- ``models``: channels (a transport kind of ``integrations.notify``, its plain config and its
  secrets encrypted or referenced from the environment), rules (which moments of which services
  and environments go to which channel), the delivery outbox, the one Slack message kept per
  deployment and channel, and the link from a Slack user to a Switchyard user;
- ``triggers``: which time-line events are which moments (started, step reached, waiting for
  approval, …) and what each says;
- ``notices``: a deployment and an event rendered as the plain ``Notice`` transports send;
- ``outbox``: fan-out of an event to the channels whose rules match (rows, after commit) and the
  delivery of one row (claim, send with a timeout, record; backoff with jitter on transient
  errors, the channel disabled on permanent ones);
- ``tasks``: the Celery tasks (``notifications.*`` on the ``notify`` queue: a dead chat service
  never holds a worker that ticks rollouts);
- ``chatops``: Slack's interactivity (buttons) and slash command, signed with Slack's signing
  secret, mapped to ``releases.actions`` as the Slack user's linked Switchyard user;
- ``config``: every change to channels, rules, Slack links (explicit, or a one-time link code
  redeemed with ``/switchyard link <code>``) and dead-letter retries -- role check, validation,
  audit -- shared by ``api`` and ``views`` so the page and the API refuse alike;
- ``api`` (channels, rules, test messages, delivery log, dead letters, Slack links) and ``views``
  (the page and the channel form).

Subscribes to deployments through the one hook ``releases.live.events.publish_deployment``
(after commit it enqueues ``notifications.fanout`` by name: ``releases.queue.enqueue_notify``).
May import: ``releases`` (actions, models, governance, audit, live presenters, api auth),
``integrations.notify``. Nothing in ``releases`` imports this package.
"""
