"""The ONE place a deployment changes state (Zulip's ``zerver/actions`` is the model).

Every action runs in a transaction, checks the actor's role (``releases.governance.policy``),
validates the transition against the state it reads under a short row lock, writes the row
(bumping its optimistic-lock ``version``), an AuditEvent and a DeploymentEvent, and after commit
publishes the change (``releases.live.events``) and asks for a reconcile tick
(``releases.queue``). Actions never call infrastructure: operator intent is recorded in the
database, and the reconcile loop (``releases.reconcile``) carries it out.

One module per idea:

- ``releases``: registering a release (immutable, idempotent by version);
- ``strategy``: validating a strategy spec (and the analysis templates it names);
- ``start``: starting a deployment (approval and freeze gates, overrides) and retrying one;
- ``operator``: promote, pause, resume, abort, rollback;
- ``approvals``: approve and reject (a deployment's start, or a canary step's gate);
- ``ticks``: what the reconcile loop records (claims, tick results, holds, errors, cleanups);
- ``window``: the rollback window (whether a success opens one, ending it early, retiring the
  warm slot when it is over);
- ``common``: what they share (allowed states, the row lock, the version check, events).

Callers use this package's names: ``from releases import actions; actions.promote(actor, id)``.
May import: ``releases.models``, ``releases.governance``, ``releases.audit``, ``releases.live``
(events only), ``releases.queue``, ``strategies``. Never ``releases.reconcile``, the web, the API.
"""

from releases.actions.approvals import approve, reject
from releases.actions.common import ALLOWED, DEFAULT_STRATEGY, LEASE_SECONDS, SLOTS
from releases.actions.operator import abort, pause, promote, resume, rollback, rollback_spec
from releases.actions.releases import create_release
from releases.actions.start import RETRYABLE, resolve_strategy, retry, start_deployment
from releases.actions.strategy import validate_strategy
from releases.actions.ticks import (
    CLEANUP_RETRY_SECONDS,
    claim,
    claim_cleanup,
    mark_started,
    record_cleanup,
    record_hold,
    record_integration_error,
    record_observed,
    record_tick,
    record_tick_failure,
    release_claim,
    renew_claim,
)
from releases.actions.window import (
    claim_window_end,
    due_windows,
    end_window,
    record_window_end,
    window_seconds,
)

__all__ = [
    "ALLOWED",
    "CLEANUP_RETRY_SECONDS",
    "DEFAULT_STRATEGY",
    "LEASE_SECONDS",
    "RETRYABLE",
    "SLOTS",
    "abort",
    "approve",
    "claim",
    "claim_cleanup",
    "claim_window_end",
    "due_windows",
    "end_window",
    "record_window_end",
    "window_seconds",
    "create_release",
    "mark_started",
    "pause",
    "promote",
    "record_cleanup",
    "record_observed",
    "record_hold",
    "record_integration_error",
    "record_tick",
    "record_tick_failure",
    "reject",
    "release_claim",
    "renew_claim",
    "resolve_strategy",
    "resume",
    "retry",
    "rollback",
    "rollback_spec",
    "start_deployment",
    "validate_strategy",
]
