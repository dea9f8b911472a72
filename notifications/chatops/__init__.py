"""Chat-ops inbound from Slack: the buttons of a deployment's message (interactivity) and the
``/switchyard`` slash command.

- ``verify``: every request is checked with Slack's v0 signing secret
  (``slack_sdk.signature.SignatureVerifier``, a 5-minute window) and its signature remembered
  for that window, so a tampered, unsigned or replayed request is refused with no effect;
- ``identity``: the Slack user as a Switchyard user (an explicit link, or a verified email
  through ``users.info``);
- ``commands``: the slash command's words parsed into one of ``releases.actions``' commands
  (pure), and run as that user with channel ``chat``: roles, scopes, approvals and freezes apply
  exactly as in the UI and API, refusals answer with the same reason and are audited;
- ``views``: the two endpoints.

May import: ``releases`` (actions, models, governance, audit, errors), ``notifications`` models,
``slack_sdk``.
"""
