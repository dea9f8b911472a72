"""``manage.py token create|list|revoke``: API tokens from the command line.

``token create --user admin --name ci [--scope read] [--expires-days 90]`` prints the new token
alone on its last line, so a script can take it with ``| tail -n 1``.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from releases.actors import Actor
from releases.errors import DomainError
from releases.governance import tokens
from releases.models import ApiToken


def _actor() -> Actor:
    return Actor.system(via="manage.py token")


def _when(value) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "-"


class Command(BaseCommand):
    help = "Create, list and revoke API tokens."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="{create,list,revoke}")
        create = sub.add_parser("create", help="create a token and print it (once)")
        create.add_argument("--user", required=True, help="username the token acts as")
        create.add_argument("--name", required=True, help="what uses it, e.g. ci")
        create.add_argument(
            "--scope",
            action="append",
            default=[],
            dest="scopes",
            choices=sorted(tokens.SCOPES),
            help="limit the token (repeatable); without it the token may do what its user may",
        )
        create.add_argument("--expires-days", type=int, default=None, help="days until it expires")
        create.add_argument(
            "--environment",
            action="append",
            default=[],
            dest="environments",
            help="limit the token to this environment (repeatable), e.g. dev",
        )
        create.add_argument(
            "--service",
            action="append",
            default=[],
            dest="services",
            help="limit the token to this service (repeatable)",
        )
        create.add_argument(
            "--service-account",
            action="store_true",
            help="create --user as a service account (no password, cannot sign in) if missing",
        )
        listing = sub.add_parser("list", help="list tokens (never their secrets)")
        listing.add_argument("--user", default=None, help="only this user's tokens")
        revoke = sub.add_parser("revoke", help="revoke a token by its prefix")
        revoke.add_argument("prefix", help="the 8 characters after swy_")

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except DomainError as exc:
            raise CommandError(exc.message) from None

    def _create(
        self,
        *,
        user,
        name,
        scopes,
        expires_days,
        environments=(),
        services=(),
        service_account=False,
        **_,
    ):
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None and service_account:
            # a robot: it acts only through its tokens, with the roles granted to it
            owner = get_user_model().objects.create_user(username=user, password=None)
        if owner is None:
            raise CommandError(f"No user is called {user!r}.")
        expires_at = None
        if expires_days is not None:
            if not 1 <= expires_days <= 3650:
                raise CommandError("--expires-days must be between 1 and 3650.")
            expires_at = timezone.now() + timedelta(days=expires_days)
        row, token = tokens.create(
            owner,
            name,
            scopes=scopes,
            expires_at=expires_at,
            actor=_actor(),
            environments=environments,
            services=services,
        )
        self.stderr.write(
            f"Created token {tokens.display(row)} for {owner.get_username()}"
            f" (scopes: {', '.join(row.scopes) or 'all'}; expires: {_when(expires_at)}).\n"
            "Copy it now: it is not shown again."
        )
        self.stdout.write(token)

    def _list(self, *, user=None, **_):
        rows = ApiToken.objects.select_related("user").order_by("user__username", "created_at")
        if user:
            rows = rows.filter(user__username=user)
        now = timezone.now()
        header = ("PREFIX", "NAME", "USER", "SCOPES", "STATUS", "EXPIRES", "LAST USED", "FROM")
        lines = [header]
        for row in rows:
            lines.append(
                (
                    row.prefix,
                    row.name,
                    row.user.get_username(),
                    ",".join(row.scopes) or "all",
                    tokens.status(row, now),
                    _when(row.expires_at),
                    _when(row.last_used_at),
                    row.last_used_from or "-",
                )
            )
        widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
        for line in lines:
            self.stdout.write(
                "  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
            )

    def _revoke(self, *, prefix, **_):
        row = tokens.revoke(prefix, actor=_actor())
        self.stdout.write(
            f"Revoked {tokens.display(row)} of {row.user.get_username()} "
            f"at {_when(row.revoked_at)} UTC."
        )
