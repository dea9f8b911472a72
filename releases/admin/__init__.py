"""Django admin for the releases app, one module per kind of row.

Configuration (services, environments, targets: ``catalog``) is editable here, each change
audited. Releases, deployments and their events, and the audit trail (``deployments``) are
read-only; a deployment's state changes only through ``releases.actions``, offered here as admin
actions. Tokens (``tokens``) are created through ``releases.governance.tokens`` and their secret
is shown once, and only for yourself. ``governed`` keeps the admin from being a second
permission system (governance read-only, teams and flags by superusers, every change audited).
``analysis`` and ``governance`` register those models; ``common`` holds the
audited and read-only base classes they share.

Django imports this package (admin autodiscovery); importing each module registers its models.
May import: actions, audit, governance, models, ``integrations.registry``. Never the reconcile loop.
"""

from releases.admin import analysis, catalog, deployments, governance, governed, tokens  # noqa: F401

governed.guard_auth_admin()
