"""Who may do what where: roles, what each action needs, what a user (and their token) may see.
Small decision functions over a few queries; no writes. What a deployment waits for is
``releases.governance.approvals``; when nothing may ship, ``releases.governance.freezes``.

``releases.actions`` calls :func:`require` at the top of every command, so the dashboard, the
API, the CLI and chat-ops cannot differ; the API and the pages call :func:`check` earlier to
answer 404 before parsing anything, and filter lists with :func:`visible`.

Roles are ordered -- viewer < deployer < approver < admin -- and each includes the ones before
it. A role is granted (``RoleBinding``) to a user or a group, in one environment or all, for one
service or all. Superusers are admins everywhere. Someone holding no role that touches an object
does not see it: 404, never 403 (outsiders learn nothing). Someone who sees it but lacks the role
for an action gets 403 with the role it needs.

Where a role counts:

- seeing (``*.view``) and registering releases (``release.create``) need the role on *some*
  target the object touches (a deployer of ``api`` in dev may register ``api`` releases);
- everything else needs a binding that *covers* the object: for a deployment or target, its
  environment (or all) and its service (or all); for a service as a whole (``service.update``),
  every environment; for an environment, every service; for ``service.create`` and
  ``environment.create``, everything.

API tokens narrow their user's rights (``releases.governance.tokens``): by action (``scopes``)
and by environment and service (slugs). A token that may not do something gets 403 saying
which limit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db.models import Q

from releases.errors import Forbidden, NotFound
from releases.governance import tokens
from releases.governance.approvals import gate_waits, policy_for, refuse_self_approval
from releases.models import (
    Channel,
    Deployment,
    Environment,
    EnvironmentPolicy,
    FreezeWindow,
    Release,
    Role,
    RoleBinding,
    Service,
    Target,
)

logger = logging.getLogger(__name__)

RANK = {Role.VIEWER: 1, Role.DEPLOYER: 2, Role.APPROVER: 3, Role.ADMIN: 4}
NO_ROLE = 0
ROLE_OF_RANK = {rank: role for role, rank in RANK.items()}

# the least role each action needs; anything not listed (configuration) needs admin
ACTION_ROLES = {
    "release.create": Role.DEPLOYER,
    "deployment.create": Role.DEPLOYER,
    "deployment.promote": Role.DEPLOYER,
    "deployment.pause": Role.DEPLOYER,
    "deployment.resume": Role.DEPLOYER,
    "deployment.abort": Role.DEPLOYER,
    "deployment.rollback": Role.DEPLOYER,
    "deployment.end_window": Role.DEPLOYER,
    "deployment.retry": Role.DEPLOYER,
    "deployment.approve": Role.APPROVER,  # or the environment policy's approver_role
    "deployment.reject": Role.APPROVER,
    "deployment.override_freeze": Role.ADMIN,
}
# actions that need a role on some target the object touches, not one covering all of it
TOUCHING = ("release.create",)
APPROVAL_ACTIONS = ("deployment.approve", "deployment.reject")
# actions with no object that any signed-in user may do
ANYONE = ("strategy.validate",)


def required_role(action: str, obj=None) -> str:
    if action.endswith(".view") or action in ANYONE:
        return Role.VIEWER
    if action in APPROVAL_ACTIONS and isinstance(obj, Deployment):
        return policy_for(obj.target.environment).approver_role
    return ACTION_ROLES.get(action, Role.ADMIN)


# --- what an object is about ------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """The environment and service an object belongs to (None: not tied to one)."""

    environment_id: int | None = None
    environment_slug: str = ""
    service_id: int | None = None
    service_slug: str = ""

    @property
    def is_global(self) -> bool:
        return self.environment_id is None and self.service_id is None

    def where(self) -> str:
        if self.service_id and self.environment_id:
            return f"{self.service_slug} in {self.environment_slug}"
        if self.service_id:
            return f"{self.service_slug} (every environment)"
        if self.environment_id:
            return f"{self.environment_slug} (every service)"
        return "every environment and service"


def scope_of(obj) -> Scope:
    if obj is None:
        return Scope()
    if isinstance(obj, Deployment):
        obj = obj.target
    if isinstance(obj, (Target, FreezeWindow)):
        env, service = obj.environment, obj.service if obj.service_id else None
        if service is None:
            return Scope(env.pk, env.slug)
        return Scope(env.pk, env.slug, service.pk, service.slug)
    if isinstance(obj, Release):
        return Scope(service_id=obj.service_id, service_slug=obj.service.slug)
    if isinstance(obj, Service):
        return Scope(service_id=obj.pk, service_slug=obj.slug)
    if isinstance(obj, Environment):
        return Scope(environment_id=obj.pk, environment_slug=obj.slug)
    if isinstance(obj, EnvironmentPolicy):
        return scope_of(obj.environment)
    if isinstance(obj, RoleBinding):
        return Scope(
            obj.environment_id,
            obj.environment.slug if obj.environment_id else "",
            obj.service_id,
            obj.service.slug if obj.service_id else "",
        )
    raise TypeError(f"no governance scope for {type(obj).__name__}")


# --- roles ------------------------------------------------------------------------------------


def _signed_in(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def bindings(user) -> list[tuple[int | None, int | None, int]]:
    """(environment id, service id, rank) of every role the user holds, directly or by team."""
    if not _signed_in(user):
        return []
    rows = RoleBinding.objects.filter(Q(user=user) | Q(group__user=user)).values_list(
        "environment_id", "service_id", "role"
    )
    return [(env, svc, RANK[role]) for env, svc, role in rows]


def rank_in(user, scope: Scope, *, covering: bool = True, held=None) -> int:
    """The highest rank the user holds on ``scope``: bindings that cover all of it, or (with
    ``covering=False``) that touch any part of it."""
    if not _signed_in(user):
        return NO_ROLE
    if user.is_superuser:
        return RANK[Role.ADMIN]
    best = NO_ROLE
    for env, svc, rank in bindings(user) if held is None else held:
        if covering:
            ok = (env is None or env == scope.environment_id) and (
                svc is None or svc == scope.service_id
            )
        else:
            ok = (env is None or scope.environment_id is None or env == scope.environment_id) and (
                svc is None or scope.service_id is None or svc == scope.service_id
            )
        if ok:
            best = max(best, rank)
    return best


def role_for(user, obj=None, *, covering: bool = True) -> str | None:
    """The user's role on ``obj`` (None: none)."""
    return ROLE_OF_RANK.get(rank_in(user, scope_of(obj), covering=covering))


def can_view(user, obj) -> bool:
    return rank_in(user, scope_of(obj), covering=False) >= RANK[Role.VIEWER]


def not_found(obj) -> NotFound:
    """The same answer as for an object that does not exist."""
    if isinstance(obj, Deployment):
        return NotFound(f"There is no deployment {obj.pk}.", details={"deployment": obj.pk})
    if isinstance(obj, Service):
        return NotFound(f"There is no service {obj.slug!r}.", details={"service": obj.slug})
    if isinstance(obj, Environment):
        return NotFound(f"There is no environment {obj.slug!r}.", details={"environment": obj.slug})
    if isinstance(obj, Release):
        return NotFound(
            f"There is no service {obj.service.slug!r}.", details={"service": obj.service.slug}
        )
    if isinstance(obj, Target):
        return NotFound(
            f"There is no service {obj.service.slug!r}.", details={"service": obj.service.slug}
        )
    return NotFound("Not found.")


def check(user, action: str, obj=None, *, token=None) -> None:
    """Raise NotFound if the user may not see ``obj``, Forbidden if they (or their token) may
    not do ``action`` on it; return if they may."""
    scope = scope_of(obj)
    held = bindings(user) if _signed_in(user) and not user.is_superuser else None
    if obj is not None and rank_in(user, scope, covering=False, held=held) < RANK[Role.VIEWER]:
        if isinstance(obj, Target):  # (perhaps not created yet: deploying, or a PUT)
            service_only = Scope(service_id=scope.service_id, service_slug=scope.service_slug)
            if rank_in(user, service_only, covering=False, held=held) < RANK[Role.VIEWER]:
                raise not_found(obj.service)
            raise not_found(obj.environment)
        raise not_found(obj)
    needed = required_role(action, obj)
    check_token(token, action, scope)
    if needed == Role.VIEWER:
        return
    covering = action not in TOUCHING
    have = rank_in(user, scope, covering=covering, held=held)
    if have < RANK[needed]:
        you = ROLE_OF_RANK.get(have)
        raise Forbidden(
            f"You may not {describe_action(action)} here: it needs the {needed} role on "
            f"{scope.where()}; you are {'a ' + you if you else 'not a member'} there.",
            details={"action": action, "needed_role": str(needed), "role": you},
        )
    if action == "deployment.approve" and isinstance(obj, Deployment) and gate_waits(obj):
        refuse_self_approval(user, obj)


def require(actor, action: str, obj=None) -> None:
    """For ``releases.actions``: the reconcile loop and other system actors may do anything;
    a person needs the role (an unknown person sees nothing)."""
    if actor.user is None:
        if actor.channel == Channel.SYSTEM:
            return
        raise not_found(obj) if obj is not None else Forbidden("Sign in first.")
    check(actor.user, action, obj, token=actor.token)


def describe_action(action: str) -> str:
    noun, _, verb = action.partition(".")
    verb = {"override_freeze": "override a freeze for", "create": "create"}.get(verb, verb)
    if noun == "deployment" and verb == "create":
        return "start a deployment"
    return f"{verb.replace('_', ' ')} {'a ' + noun if verb == 'create' else 'the ' + noun}"


def visibility_q(user, *, env: str | None, service: str | None) -> Q | None:
    """A filter for what the user may see, by the field paths of the environment and service
    (None: the model has no such field); None means everything."""
    if not _signed_in(user):
        return Q(pk__in=[])
    if user.is_superuser:
        return None
    q = Q(pk__in=[])
    for env_id, svc_id, _rank in bindings(user):
        part = Q()
        if env_id is not None and env is not None:
            part &= Q(**{env: env_id})
        if svc_id is not None and service is not None:
            part &= Q(**{service: svc_id})
        if not part:  # a binding on everything the model can tell apart
            return None
        q |= part
    return q


def _slug_path(path: str) -> str:
    return "slug" if path == "pk" else f"{path}__slug"


def visible(qs, user, *, env: str | None, service: str | None, token=None):
    """``qs`` limited to what the user -- and their token -- may see."""
    q = visibility_q(user, env=env, service=service)
    if q is not None:
        qs = qs.filter(q)
    if token is not None:
        if token.environments and env is not None:
            qs = qs.filter(**{f"{_slug_path(env)}__in": token.environments})
        if token.services and service is not None:
            qs = qs.filter(**{f"{_slug_path(service)}__in": token.services})
    return qs


def visible_deployments(qs, user, token=None):
    return visible(qs, user, env="target__environment", service="target__service", token=token)


# --- tokens -----------------------------------------------------------------------------------


def token_allows(scopes, action: str) -> bool:
    """Whether a token with ``scopes`` may do ``action`` (ignoring where)."""
    scopes = set(scopes or ())
    if not scopes:
        return True
    if action.endswith(".view") or action in ANYONE:
        return True  # every scope includes reading
    if "write" in scopes and action not in tokens.OWN_SCOPE_ACTIONS:
        return True
    if "config" in scopes and tokens.scope_for(action) == "config":
        return True
    return any(action in tokens.SCOPE_ACTIONS.get(s, ()) for s in scopes)


def check_token(token, action: str, scope: Scope) -> None:
    if token is None:
        return
    if not token_allows(token.scopes, action):
        narrow = tokens.scope_for(action)
        needed = narrow if action in tokens.OWN_SCOPE_ACTIONS else "write"
        also = f"the scope {narrow!r}" if needed == narrow else f"'write' (or {narrow!r})"
        raise Forbidden(
            f"This token ({tokens.display(token)}) has the scopes {', '.join(token.scopes)}; "
            f"{action} needs {also}.",
            details={"action": action, "needed_scope": needed, "narrow_scope": narrow},
        )
    reading = action.endswith(".view") or action in ANYONE
    for kind, allowed, slug, unbound_ok in (
        ("environments", token.environments, scope.environment_slug, reading or action in TOUCHING),
        ("services", token.services, scope.service_slug, reading),
    ):
        if not allowed:
            continue
        if slug and slug not in allowed:
            raise Forbidden(
                f"This token ({tokens.display(token)}) is limited to the {kind} "
                f"{', '.join(allowed)}; {slug} is not one of them.",
                details={"action": action, f"token_{kind}": list(allowed)},
            )
        if not slug and not unbound_ok:
            raise Forbidden(
                f"This token ({tokens.display(token)}) is limited to the {kind} "
                f"{', '.join(allowed)}, so it may not {describe_action(action)} for all of them.",
                details={"action": action, f"token_{kind}": list(allowed)},
            )


def check_approver(actor, d: Deployment) -> str:
    """The approver's role; Forbidden without it, or for self-approval when the policy refuses
    it."""
    require(actor, "deployment.approve", d)
    if actor.user is None:
        raise Forbidden("Only a person can approve a deployment.")
    return role_for(actor.user, d) or ""
