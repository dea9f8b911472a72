"""``manage.py fleet``: run the local fleet agent with this installation's URL and token."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the local fleet agent (application processes + weighted routers) in the foreground."

    def add_arguments(self, parser):
        url = urlsplit(settings.FLEET_URL)
        parser.add_argument("--host", default=url.hostname or "127.0.0.1")
        parser.add_argument("--port", type=int, default=url.port or 8765)

    def handle(self, *args, **options):
        # imported here, not at the top: the agent pulls in aiohttp, which every other
        # management command (and Django's command discovery) need not load
        from integrations.local.agent import main

        main(
            [
                "--host",
                options["host"],
                "--port",
                str(options["port"]),
                "--token",
                settings.FLEET_TOKEN,
            ]
        )
