"""The domain's rows, one module per idea; this package is their one public name.

- ``catalog``: services, environments, targets (a service placed in an environment, run by a
  provider from ``integrations.registry``), releases;
- ``deployments``: a deployment's state machine and its time line (``DeploymentEvent``);
- ``analysis``: analysis templates, runs and their measurements;
- ``governance``: roles, approval policies, approvals, freeze windows and overrides, sign-in
  failures; ``schedule`` holds the pure freeze-window maths those rows use;
- ``tokens``: API tokens (hashed);
- ``audit``: the append-only, hash-chained audit trail and its head.

Import models from ``releases.models`` (``from releases.models import Deployment``); the app
label stays ``releases``, so moving a model between these modules needs no migration.
Only ``releases.actions`` and the reconcile loop (through it) change a Deployment's state.
May import: Django, ``integrations.registry`` (the provider choices). Nothing else of ``releases``.
"""

from releases.models.analysis import AnalysisRun, AnalysisTemplate, Measurement
from releases.models.audit import AuditChainHead, AuditEvent
from releases.models.catalog import (
    Channel,
    Environment,
    ImmutableError,
    Release,
    Service,
    Target,
)
from releases.models.deployments import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    Deployment,
    DeploymentEvent,
    State,
)
from releases.models.governance import (
    Approval,
    Decision,
    EnvironmentPolicy,
    FreezeKind,
    FreezeOverride,
    FreezeWindow,
    LoginFailure,
    Role,
    RoleBinding,
)
from releases.models.tokens import ApiToken

__all__ = [
    "ACTIVE_STATES",
    "TERMINAL_STATES",
    "AnalysisRun",
    "AnalysisTemplate",
    "ApiToken",
    "Approval",
    "AuditChainHead",
    "AuditEvent",
    "Channel",
    "Decision",
    "Deployment",
    "DeploymentEvent",
    "Environment",
    "EnvironmentPolicy",
    "FreezeKind",
    "FreezeOverride",
    "FreezeWindow",
    "ImmutableError",
    "LoginFailure",
    "Measurement",
    "Release",
    "Role",
    "RoleBinding",
    "Service",
    "State",
    "Target",
]
