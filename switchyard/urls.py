from django.contrib import admin
from django.urls import include, path

from releases.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("metrics", __import__("releases.prom").prom.metrics, name="metrics"),
    path("", include("releases.urls")),
]
