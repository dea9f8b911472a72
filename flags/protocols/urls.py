from django.urls import path

from flags.protocols import experiments, frontend, ofrep, unleash

urlpatterns = [
    path("api/client/features", unleash.features, name="unleash-features"),
    path("api/client/metrics", unleash.metrics, name="unleash-metrics"),
    path("api/client/register", unleash.register, name="unleash-register"),
    path("ofrep/v1/evaluate/flags", ofrep.evaluate_all, name="ofrep-bulk"),
    path("ofrep/v1/evaluate/flags/<str:key>", ofrep.evaluate_flag, name="ofrep-flag"),
    path("ofrep/v1/configuration", ofrep.configuration, name="ofrep-configuration"),
    path("api/frontend", frontend.toggles, name="unleash-frontend"),
    path("api/frontend/client/metrics", frontend.metrics, name="unleash-frontend-metrics"),
    path("api/frontend/client/register", frontend.register, name="unleash-frontend-register"),
    path("experiments/v1/events", experiments.events, name="experiment-events"),
]
