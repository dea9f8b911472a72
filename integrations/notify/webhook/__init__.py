"""Generic webhook: a JSON body signed per the Standard Webhooks spec (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``) with the ``standardwebhooks`` package, so a
receiver verifies it with any of that spec's libraries. May import: ``integrations.notify.base``,
``standardwebhooks``.
"""
