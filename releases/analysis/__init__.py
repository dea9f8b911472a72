"""Automated analysis, the Django side: templates and runs of the pure judge.

- ``templates``: validating, reading and saving analysis templates (``strategies.analysis``
  checks the spec);
- ``sources``: the metric query for one metric of a run, and the provider it reads from
  (``integrations.metrics``);
- ``runs``: starting, advancing (measure, then judge with ``strategies.analysis.run``),
  stopping runs, and the verdict of a deployment's analyses for the reconcile loop.

How runs look to people (the API, the page, the WebSocket) is ``releases.live.presenters``.
May import: ``releases.models``, ``releases.live.events``, ``integrations``, ``strategies``.
"""
