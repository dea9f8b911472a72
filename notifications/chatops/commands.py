"""The slash command and the buttons, as ``releases.actions`` commands run by the linked user.

``parse`` is pure: ``/switchyard status api prod``, ``deploy api 1.4.2 to prod``, ``promote 42``
or ``promote api prod`` (the active deployment there), ``pause``, ``resume``, ``abort``,
``rollback``, ``approve``, ``reject`` (with an optional comment after ``--``), ``help``.
``run`` carries it out and returns the answer to show in Slack; a refusal (no role, a freeze,
an approval missing, a state that does not allow it) answers with the action's own message
and is audited as ``chat.refused``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from releases import actions, audit
from releases.actors import Actor
from releases.errors import DomainError, InvalidRequest, NotFound
from releases.governance import policy
from releases.models import ACTIVE_STATES, Channel, Deployment, Environment, Service

LINK_USAGE = (
    "`/switchyard link <code>`: get the code on the Notifications page (*Link my Slack "
    "account*); it works once, for 10 minutes."
)
OPERATOR = ("promote", "pause", "resume", "abort", "rollback", "approve", "reject")
USAGE = (
    "Usage: `/switchyard status <service> [env]` · `/switchyard deploy <service> <version> to "
    "<env>` · `/switchyard promote|pause|resume|abort|rollback|approve|reject <id | service env>` "
    "(a comment after `--`) · `/switchyard link <code>` · `/switchyard help`"
)


@dataclass(frozen=True)
class Command:
    verb: str
    deployment_id: int | None = None
    service: str = ""
    environment: str = ""
    version: str = ""
    comment: str = ""
    code: str = ""


def parse(text: str) -> Command:
    """The words of a slash command as a Command; InvalidRequest with the usage otherwise."""
    text, _, comment = (text or "").partition("--")
    words = text.split()
    if not words or words[0].lower() == "help":
        return Command("help")
    verb, args = words[0].lower(), words[1:]
    if verb == "status" and 1 <= len(args) <= 2:
        return Command("status", service=args[0], environment=args[1] if len(args) > 1 else "")
    if verb == "link":
        if len(args) != 1:
            raise InvalidRequest(f"Give the link code. {LINK_USAGE}")
        return Command("link", code=args[0])
    if verb == "deploy" and len(args) == 4 and args[2].lower() == "to":
        return Command("deploy", service=args[0], version=args[1], environment=args[3])
    if verb in OPERATOR:
        if len(args) == 1 and args[0].lstrip("#").isdigit():
            return Command(verb, deployment_id=int(args[0].lstrip("#")), comment=comment.strip())
        if len(args) == 2:
            return Command(verb, service=args[0], environment=args[1], comment=comment.strip())
    raise InvalidRequest(f"I did not understand `{(text or '').strip()}`. {USAGE}")


def actor_for(user, team_id: str, slack_user_id: str, slack_name: str = "") -> Actor:
    who = f"slack {slack_name or slack_user_id}"
    return Actor(user=user, channel=Channel.CHAT, via=who)


def _deployment(command: Command) -> Deployment:
    if command.deployment_id is not None:
        d = Deployment.objects.filter(pk=command.deployment_id).first()
        if d is None:
            raise NotFound(f"There is no deployment {command.deployment_id}.")
        return d
    d = (
        Deployment.objects.filter(
            target__service__slug=command.service,
            target__environment__slug=command.environment,
            state__in=ACTIVE_STATES,
        )
        .order_by("-id")
        .first()
    )
    if d is None and command.verb == "rollback":  # a finished one may be rolled back
        d = (
            Deployment.objects.filter(
                target__service__slug=command.service,
                target__environment__slug=command.environment,
            )
            .order_by("-id")
            .first()
        )
    if d is None:
        raise NotFound(
            f"There is no active deployment of {command.service} in {command.environment}."
        )
    return d


def _run_operator(actor: Actor, command: Command, d: Deployment) -> Deployment:
    verb = command.verb
    if verb == "approve":
        return actions.approve(actor, d.pk, comment=command.comment)
    if verb == "reject":
        return actions.reject(actor, d.pk, comment=command.comment)
    if verb in ("abort", "rollback"):
        return getattr(actions, verb)(actor, d.pk, reason=command.comment)
    return getattr(actions, verb)(actor, d.pk)


def describe(d: Deployment) -> str:
    d = Deployment.objects.select_related(
        "target__service", "target__environment", "release", "from_release"
    ).get(pk=d.pk)
    weights = " / ".join(f"{k} {v}%" for k, v in (d.weights or {}).items())
    step = f", {d.step}" if d.step else ""
    split = f", traffic {weights}" if weights else ""
    return (
        f"#{d.pk} {d.target.service.slug} {d.release.version} → {d.target.environment.slug}: "
        f"*{str(d.state).replace('_', ' ')}*{step}{split}"
    )


def status(actor: Actor, command: Command) -> str:
    service = Service.objects.filter(slug=command.service).first()
    if service is None or not policy.can_view(actor.user, service):
        raise NotFound(f"There is no service {command.service!r}.")
    rows = Deployment.objects.filter(target__service=service).order_by("-id")
    if command.environment:
        rows = rows.filter(target__environment__slug=command.environment)
    rows = [d for d in rows[:20] if policy.can_view(actor.user, d)][:5]
    if not rows:
        return f"No deployments of {command.service} yet."
    return "\n".join(describe(d) for d in rows)


def run(actor: Actor, command: Command) -> str:
    """Carry out ``command`` as ``actor``; the answer to show. Refusals are audited."""
    if command.verb == "help":
        return USAGE
    d = None
    try:
        if actor.user is None:
            raise NotFound(
                "Your Slack account is not linked to a Switchyard user: get a link code on the "
                "Notifications page and run `/switchyard link <code>` (or ask an admin to link "
                "it, or use the email your Switchyard account has)."
            )
        if command.verb == "status":
            return status(actor, command)
        if command.verb == "deploy":
            service = Service.objects.filter(slug=command.service).first()
            environment = Environment.objects.filter(slug=command.environment).first()
            if service is None or environment is None:
                raise NotFound(f"There is no {command.service} in {command.environment}.")
            d, _ = actions.start_deployment(
                actor,
                service=service,
                environment=environment,
                version=command.version,
                reason="from Slack",
            )
            return f"Started: {describe(d)}"
        d = _deployment(command)
        result = _run_operator(actor, command, d)
        return f"Done ({command.verb}): {describe(result)}"
    except DomainError as exc:
        _refused(actor, command, d, exc)
        return f":no_entry: {exc.message}"


def _refused(actor: Actor, command: Command, d: Deployment | None, exc: DomainError) -> None:
    data = {"command": command.verb, "code": exc.code, "message": exc.message}
    with transaction.atomic():
        if d is not None:
            audit.record(actor, "chat.refused", d, data)
        else:
            audit.record(actor, "chat.refused", None, data, object_type="chat", object_id="-")
