from django.apps import AppConfig


class SwitchyardConfig(AppConfig):
    name = "switchyard"
    verbose_name = "Switchyard"

    def ready(self):
        from switchyard import checks, exposure  # noqa: F401  (registers the system checks)
