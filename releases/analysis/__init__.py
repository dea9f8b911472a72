"""Automated analysis, the Django side: templates and runs of the pure judge.

- ``templates``: validating, reading and saving analysis templates (``strategies.analysis``
  checks the spec), and the built-in ones (stored when a run first needs one);
- ``sources``: the metric query for one metric of a run, and the provider it reads from
  (``integrations.metrics``);
- ``secrets``: secret template arguments, read from the secret store at each measurement;
- ``runs``: starting, advancing (measure, then judge with ``strategies.analysis.run``),
  stopping runs, and the verdict of a deployment's analyses for the reconcile loop.

How runs look to people (the API, the page, the WebSocket) is ``releases.live.presenters``.
May import: ``releases.models``, ``releases.live.events``, ``integrations``, ``strategies``.
"""
