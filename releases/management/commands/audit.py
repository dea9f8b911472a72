"""``manage.py audit verify``, ``manage.py audit checkpoint`` and ``manage.py audit export``.

``verify`` walks the hash chain and checks every signed checkpoint (``--checkpoints``, default
``SWITCHYARD_AUDIT_CHECKPOINTS``); it exits 1 naming the first row that was altered, removed or
reordered, or the checkpoint the table no longer matches (0 when intact). ``checkpoint`` signs
the chain head and writes it out (``--to``: a path, file://… or s3://bucket/prefix/).
``export`` writes the trail as JSON lines (oldest first), filtered by time, action, actor,
channel or object; ``--output`` writes to a file instead of stdout.
"""

from __future__ import annotations

from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from releases import audit
from releases.audit import checkpoints
from releases.models import AuditEvent


def _when(text: str, *, end: bool = False) -> datetime:
    value = parse_datetime(text)
    if value is None:
        day = parse_date(text)
        if day is None:
            raise CommandError(f"{text!r} is not a date (2025-06-01) or a time (2025-06-01T12:00Z)")
        value = datetime.combine(day, time.max if end else time.min)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return value


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain, or export it as JSON lines."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(
            dest="action", required=True, metavar="{verify,checkpoint,export}"
        )
        verify = sub.add_parser("verify", help="walk the chain; exit 1 naming the first broken row")
        verify.add_argument(
            "--checkpoints", help="where the signed checkpoints are (path or s3://)"
        )
        checkpoint = sub.add_parser("checkpoint", help="sign the chain head and write it out")
        checkpoint.add_argument("--to", help="a path, file://… or s3://bucket/prefix/")
        export = sub.add_parser("export", help="write events as JSON lines, oldest first")
        export.add_argument("--since", help="from this date or time (inclusive)")
        export.add_argument("--until", help="up to this date or time (inclusive)")
        export.add_argument("--action", help="an action, or a prefix ending in . (deployment.)")
        export.add_argument("--actor", help="the actor's name (a username, or e.g. 'ci')")
        export.add_argument("--channel", choices=["ui", "api", "chat", "system"])
        export.add_argument("--object", help="TYPE or TYPE:ID, e.g. deployment:42")
        export.add_argument("--after-id", type=int, help="only rows with a larger id")
        export.add_argument("--output", "-o", help="a file to write (default: stdout)")

    def handle(self, *args, **options):
        if options["action"] == "verify":
            return self.verify(options["checkpoints"])
        if options["action"] == "checkpoint":
            return self.checkpoint(options["to"])
        return self.export(options)

    def verify(self, where: str | None):
        verdict = audit.verify()
        if not verdict.ok:
            raise CommandError(str(verdict), returncode=1)
        where = checkpoints.destination(where)
        if not where:
            self.stdout.write(
                f"{verdict} No checkpoints are configured (SWITCHYARD_AUDIT_CHECKPOINTS): the "
                "chain is only as safe as the database's triggers."
            )
            return
        try:
            finding = checkpoints.check(checkpoints.store_for(where).read())
        except checkpoints.CheckpointError as exc:
            raise CommandError(str(exc), returncode=1) from None
        if not finding.ok:
            raise CommandError(finding.problem, returncode=1)
        self.stdout.write(
            f"{verdict} It matches all {finding.checked} signed checkpoints at {where}."
        )

    def checkpoint(self, to: str | None):
        try:
            cp = checkpoints.export(to)
        except checkpoints.CheckpointError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Signed checkpoint: {cp['length']} rows, last #{cp['last_id']} "
            f"(key id {cp['key_id']}) written to {checkpoints.destination(to)}."
        )

    def export(self, options):
        rows = AuditEvent.objects.order_by("id")
        if options["since"]:
            rows = rows.filter(created_at__gte=_when(options["since"]))
        if options["until"]:
            rows = rows.filter(created_at__lte=_when(options["until"], end=True))
        if options["action"]:
            action = options["action"]
            rows = (
                rows.filter(action__startswith=action)
                if action.endswith(".")
                else rows.filter(action=action)
            )
        if options["actor"]:
            rows = rows.filter(actor_name__startswith=options["actor"])
        if options["channel"]:
            rows = rows.filter(channel=options["channel"])
        if options["object"]:
            kind, _, pk = options["object"].partition(":")
            rows = rows.filter(object_type=kind)
            if pk:
                rows = rows.filter(object_id=pk)
        if options["after_id"] is not None:
            rows = rows.filter(pk__gt=options["after_id"])
        out = open(options["output"], "w", encoding="utf-8") if options["output"] else None
        count = 0
        try:
            for line in audit.export(rows):
                if out:
                    out.write(line + "\n")
                else:
                    self.stdout.write(line)
                count += 1
        finally:
            if out:
                out.close()
        if out:
            self.stderr.write(f"wrote {count} event(s) to {options['output']}")
