"""What people watch, live: events on the channel layer, the WebSocket consumers, and the
presenters the pages, the WebSocket and the API share.

- ``events``: publishing after commit (board cells, a deployment's changes, metric samples);
  the message types are documented there;
- ``presenters``: plain dicts of deployments, events, releases, targets, board cells and
  analysis runs (they take rows and values; they never run analysis);
- ``consumers`` + ``routing``: the board and deployment WebSockets (permission per message);
- ``charts``: the live charts' request samples, read through each target's provider
  ``MetricsSource`` (``integrations.registry``) and kept in Redis for 15 minutes.

May import: ``releases.models``, ``releases.governance`` (who may watch), ``releases.targets``,
``integrations``. Never actions or the reconcile loop: the live layer only shows.
"""
