"""System checks for configuration: a bad setting is an error with an id, not a stack trace."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

LOOPBACK = {"localhost", "127.0.0.1", "[::1]", "testserver"}


@register(Tags.security, deploy=False)
def check_configuration(app_configs=None, **kwargs):
    problems = [
        Error(message, hint="Fix the environment variable and restart.", id=check_id)
        for check_id, message in settings.SETTINGS_ERRORS
    ]
    exposed = set(settings.ALLOWED_HOSTS) - LOOPBACK
    if settings.SECRET_KEY == settings.DEV_SECRET_KEY:
        if not settings.DEBUG and exposed:
            problems.append(
                Error(
                    "SECRET_KEY is not set but ALLOWED_HOSTS exposes Switchyard beyond this "
                    f"machine ({', '.join(sorted(exposed))}).",
                    hint="Set SECRET_KEY (or SECRET_KEY_FILE) to a long random value.",
                    id="switchyard.E010",
                )
            )
        else:
            problems.append(
                Warning(
                    "SECRET_KEY is not set: using the built-in development key.",
                    hint="Set SECRET_KEY before exposing Switchyard to anyone else.",
                    id="switchyard.W001",
                )
            )
    if settings.DEBUG and exposed:
        problems.append(
            Warning(
                "DEBUG is on while ALLOWED_HOSTS exposes Switchyard beyond this machine.",
                id="switchyard.W002",
            )
        )
    return problems
