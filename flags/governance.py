"""Who may change flags, on ``releases.governance.policy``'s roles (viewer < deployer <
approver < admin, per environment): the same bindings that let someone deploy to prod let them
release a feature there.

- turning a flag on or off, changing its strategies or variants, the kill switch: deployer on
  that environment (a kill switch must not wait for an admin);
- defining a flag (key, type, description) or archiving it: deployer in some environment;
- segments (shared by every environment): deployer in every environment;
- SDK tokens: admin on the token's environment.

People with no role anywhere get 404 (outsiders learn nothing); API tokens narrow further
(``policy.check_token``). The system actor may do anything.
"""

from __future__ import annotations

from releases.errors import Forbidden, NotFound
from releases.governance import policy
from releases.models import Channel, Role

NEEDS = {
    "flag.view": (Role.VIEWER, "touching"),
    "flag.create": (Role.DEPLOYER, "touching"),
    "flag.update": (Role.DEPLOYER, "touching"),
    "flag.archive": (Role.DEPLOYER, "touching"),
    "flag.change": (Role.DEPLOYER, "environment"),
    "flag.kill": (Role.DEPLOYER, "environment"),
    "segment.change": (Role.DEPLOYER, "everywhere"),
    "sdktoken.create": (Role.ADMIN, "environment"),
    "sdktoken.revoke": (Role.ADMIN, "environment"),
}


def check(user, action: str, environment=None, *, token=None) -> None:
    """NotFound for someone with no role (there, or anywhere), Forbidden without the role."""
    role, where = NEEDS[action]
    scope = policy.scope_of(environment) if where == "environment" else policy.Scope()
    if policy.rank_in(user, scope, covering=False) < policy.RANK[Role.VIEWER]:
        if environment is not None and where == "environment":
            raise NotFound(
                f"There is no environment {environment.slug!r}.",
                details={"environment": environment.slug},
            )
        raise NotFound("Not found.")
    policy.check_token(token, action, scope)
    have = policy.rank_in(user, scope, covering=where != "touching")
    if have < policy.RANK[role]:
        you = policy.ROLE_OF_RANK.get(have)
        raise Forbidden(
            f"You may not do {action} here: it needs the {role} role on {scope.where()}; "
            f"you are {'a ' + you if you else 'not a member'} there.",
            details={"action": action, "needed_role": str(role), "role": you},
        )


def require(actor, action: str, environment=None) -> None:
    if actor.user is None:
        if actor.channel == Channel.SYSTEM:
            return
        raise Forbidden("Sign in first.")
    check(actor.user, action, environment)
