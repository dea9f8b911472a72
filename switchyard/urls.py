from django.contrib import admin
from django.urls import include, path

from flags.api import api as flags_api
from releases.api import api
from switchyard.metrics import metrics

urlpatterns = [
    path("", include("flags.protocols.urls")),  # SDKs: /api/client/*, /ofrep/v1/*
    path("admin/", admin.site.urls),
    path("api/v1/", flags_api.urls),  # /api/v1/flags…, /segments, /sdk-tokens; before the catch-all
    path("api/v1/", api.urls),
    path("metrics", metrics, name="metrics"),  # releases' metrics, then the flags'
    path("", include("notifications.urls")),  # the Notifications page, Slack chat-ops
    path("flags/", include("flags.web_urls")),  # dashboard pages for flags
    path("", include("releases.web.urls")),
]
