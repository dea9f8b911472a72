"""Microsoft Teams: an Adaptive Card posted to a Workflows ("Post to a channel when a webhook
request is received") webhook URL, which is a secret. Workflows cannot edit a posted card, so
each notice is its own card. May import: ``integrations.notify.base``.
"""
