"""The dashboard's pages, one module per page, server-rendered (templates/releases/).

- ``board``: the service × environment board; ``deployment``: one deployment, live, with its
  buttons; ``release``: a release and its deploy form; ``history``: past deployments and
  delivery figures; ``audit``: the audit log and its export; ``governance``: tokens and the
  approval confirmation; ``common``: what the pages share (visibility, paging, refusals);
- ``urls``: their routes.

Pages change state only through ``releases.actions``. May import: actions, governance, models,
``releases.live`` (presenters, charts), ``releases.reports``. Never ``releases.reconcile``.
"""
