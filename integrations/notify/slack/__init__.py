"""Slack: Block Kit messages through ``slack_sdk``.

``blocks`` renders a notice (the deployment's state, step, traffic split, analysis verdict, who
did what, and the buttons its state allows); ``transport`` delivers it -- with a bot token, ONE
message per deployment posted with ``chat.postMessage`` and kept up to date with ``chat.update``,
thread replies for the moments that matter; with an incoming webhook, one message per notice.
The buttons' clicks come back to ``notifications.chatops`` (signed by Slack).
May import: ``integrations.notify.base``, ``slack_sdk``.
"""
