"""Notification transports: how a notice about a deployment reaches the place a team works.

One small package per kind -- ``slack`` (``slack_sdk``: a bot token keeping one message per
deployment up to date, or an incoming webhook), ``teams`` (an Adaptive Card posted to a Workflows
webhook), ``webhook`` (a JSON body signed per the Standard Webhooks spec with ``standardwebhooks``)
and ``email`` (Django's email backend) -- registered once in ``registry.TRANSPORTS`` (kind ->
dotted path, imported lazily, as healthchecks' ``hc/api/transports.py`` does). ``base`` holds
what they share: the plain-valued :class:`base.Notice` they render, :class:`base.TransportError`
(``permanent`` says whether trying again can help, ``retry_after`` what the service asked for)
and ``base.post_json``, the one HTTP call with its timeout and error classification.

May import: the standard library, ``slack_sdk``, ``standardwebhooks``, ``httpx``,
``django.core.mail`` and ``django.conf``. Never ``releases`` or ``notifications``: the Django side
hands plain values in.
"""
