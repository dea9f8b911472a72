from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "releases"
    verbose_name = "Releases"

    def ready(self):
        from releases.governance import security  # noqa: F401 -- connects the sign-in signal handlers
