"""Feature flags: deploying code and releasing a feature are two different acts.

Rooms: ``models`` (flags, their settings per environment, segments, SDK tokens, evaluation
counts, SDK instances), ``engine`` (pure evaluation with Unleash's semantics), ``validation``
(what a strategy or variant may be), ``actions`` (the ONE place flags change: roles, audit
trail, revision bump), ``state`` (the Unleash-format document served per environment, cached by
revision), ``sdk`` (SDK tokens and the evaluation counters), ``protocols`` (Unleash's client
API and the OpenFeature Remote Evaluation Protocol), ``api`` (the management REST API),
``web`` (dashboard pages), ``stale`` (the stale-flag report), ``plans`` (rollout plans),
``experiments`` (A/B tests: start/stop, events, looks, the result; the statistics are
``engine.experiment``, on ``strategies.analysis.sequential``).
May import: ``strategies`` (pure), ``releases.models``, ``releases.governance``,
``releases.audit``, ``releases.actors``, ``releases.errors``, ``releases.api.auth`` (api only).
``releases`` never imports ``flags``.
"""
