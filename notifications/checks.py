"""System checks: a secrets key that cannot encrypt is an error with an id, not a stack trace
at the first channel saved."""

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, register


@register()
def check_notifications(app_configs=None, **kwargs):
    problems = []
    for i, key in enumerate(k.strip() for k in settings.NOTIFY_SECRETS_KEY.split(",") if k.strip()):
        try:
            Fernet(key)
        except ValueError:
            problems.append(
                Error(
                    f"NOTIFY_SECRETS_KEY key #{i + 1} is not a Fernet key.",
                    hint='Generate one with `python -c "from cryptography.fernet import Fernet; '
                    'print(Fernet.generate_key().decode())"`.',
                    id="notifications.E001",
                )
            )
    return problems
