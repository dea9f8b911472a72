"""``manage.py kubernetes_templates``: install (or refresh) the ready-made analysis templates for
kubernetes targets (``integrations.kubernetes.analysis``): ``kubernetes-ingress-nginx`` and
``kubernetes-istio``."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from integrations.kubernetes.analysis import TEMPLATES
from releases.analysis import templates


class Command(BaseCommand):
    help = "Install the analysis templates for kubernetes targets' standard request metrics."

    def handle(self, *args, **options):
        for name, spec in TEMPLATES.items():
            _, created = templates.save_template(
                name, spec, description=f"{name}: 5xx rate and p95 latency per slot (Prometheus)"
            )
            self.stdout.write(f"{'created' if created else 'updated'} {name}")
