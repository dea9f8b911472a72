"""ASGI entry point: HTTP through Django (static files included), WebSockets through Channels."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "switchyard.settings")
django_asgi = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from flags.live import websocket_urlpatterns as flag_websockets  # noqa: E402
from releases.live.routing import websocket_urlpatterns  # noqa: E402

# Import every view and build the URL resolver (and the API's schema classes) now, once per
# process, rather than in the first request each web worker serves. Nothing here touches the
# database or does a request's work.
get_resolver().url_patterns  # noqa: B018

application = ProtocolTypeRouter(
    {
        "http": ASGIStaticFilesHandler(django_asgi),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns + flag_websockets))
        ),
    }
)

# Everything imported so far lives as long as the process: keep it out of the garbage collector's
# full collections, whose pauses were the tail of the board page's server time (bench/board.py).
gc.freeze()
