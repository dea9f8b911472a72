from django.urls import path

from flags.protocols import experiments, ofrep, unleash

urlpatterns = [
    path("api/client/features", unleash.features, name="unleash-features"),
    path("api/client/metrics", unleash.metrics, name="unleash-metrics"),
    path("api/client/register", unleash.register, name="unleash-register"),
    path("ofrep/v1/evaluate/flags", ofrep.evaluate_all, name="ofrep-bulk"),
    path("ofrep/v1/evaluate/flags/<str:key>", ofrep.evaluate_flag, name="ofrep-flag"),
    path("ofrep/v1/configuration", ofrep.configuration, name="ofrep-configuration"),
    path("experiments/v1/events", experiments.events, name="experiment-events"),
]
