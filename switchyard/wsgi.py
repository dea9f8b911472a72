"""WSGI entry point: plain HTTP through Django (static files included), no WebSockets, for
gunicorn's threaded workers (``switchyard.processes.http_command``). Production serves HTTP and
WebSockets with ``switchyard/asgi.py`` (uvicorn); ``bench/api.py --server wsgi`` measures this one
beside it, and ``docs/serving.md`` says why it is not split off (about the same CPU per request).
Its audit export is collected before it is sent (an async generator, served synchronously).
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "switchyard.settings")
django_wsgi = get_wsgi_application()

from django.contrib.staticfiles.handlers import StaticFilesHandler  # noqa: E402
from django.urls import get_resolver  # noqa: E402

# As in asgi.py: import every view and build the URL resolver once per process, not in the first
# request each worker serves (gunicorn loads this in every worker: no database work here).
get_resolver().url_patterns  # noqa: B018

application = StaticFilesHandler(django_wsgi)

# Everything imported so far lives as long as the process: keep it out of full collections.
gc.freeze()
