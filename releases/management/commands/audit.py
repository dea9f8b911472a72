"""``manage.py audit verify`` and ``manage.py audit export``.

``verify`` walks the hash chain and exits 1 naming the first row that was altered, removed or
reordered (0 when intact). ``export`` writes the trail as JSON lines (oldest first), filtered by
time, action, actor, channel or object; ``--output`` writes to a file instead of stdout.
"""

from __future__ import annotations

from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from releases import audit
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
        sub = parser.add_subparsers(dest="action", required=True, metavar="{verify,export}")
        sub.add_parser("verify", help="walk the chain; exit 1 naming the first broken row")
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
            return self.verify()
        return self.export(options)

    def verify(self):
        verdict = audit.verify()
        if not verdict.ok:
            raise CommandError(str(verdict), returncode=1)
        self.stdout.write(str(verdict))

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
