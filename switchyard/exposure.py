"""System checks for a Switchyard reachable beyond this machine (ALLOWED_HOSTS names a host
other than loopback): secrets must be real, and ``/metrics`` must want a token.

- ``switchyard.E011`` -- a secret (SECRET_KEY, FLEET_TOKEN, SWITCHYARD_METRICS_TOKEN,
  SWITCHYARD_AUDIT_KEY) is a placeholder (``change-me…``, ``insecure``, ``example``…) or
  shorter than 32 characters;
- ``switchyard.E012`` -- ``/metrics`` is open: SWITCHYARD_METRICS_TOKEN is not set;
- ``switchyard.E013`` -- (anywhere) checkpoints are configured but there is no key to sign them.

On loopback (the one-machine demo) none of these apply. An unset SECRET_KEY is E010
(``switchyard.checks``).
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register

LOOPBACK = {"localhost", "127.0.0.1", "[::1]", "testserver"}
MIN_SECRET_LENGTH = 32
PLACEHOLDERS = (
    "change-me",
    "changeme",
    "change_me",
    "insecure",
    "placeholder",
    "example",
    "not-for-production",
    "replace-me",
    "password",
    "secret-key",
    "xxxxxxxx",
)


def weakness(value: str) -> str | None:
    """Why ``value`` is not a real secret, or None."""
    lowered = value.lower()
    for word in PLACEHOLDERS:
        if word in lowered:
            return f"it looks like a placeholder (contains {word!r})"
    if len(value) < MIN_SECRET_LENGTH:
        return f"it is {len(value)} characters long; use at least {MIN_SECRET_LENGTH}"
    if len(set(value)) < 8:
        return "it repeats too few characters to be random"
    return None


def secrets_in_use() -> dict[str, str]:
    found = {"SECRET_KEY": settings.SECRET_KEY}
    if getattr(settings, "FLEET_TOKEN_GIVEN", False):
        found["FLEET_TOKEN"] = settings.FLEET_TOKEN
    for name, setting in (("SWITCHYARD_METRICS_TOKEN", "METRICS_TOKEN"),
                          ("SWITCHYARD_AUDIT_KEY", "AUDIT_CHECKPOINT_KEY")):  # fmt: skip
        value = getattr(settings, setting, "")
        if value:
            found[name] = value
    return found


@register(Tags.security)
def check_exposure(app_configs=None, **kwargs):
    problems = []
    if getattr(settings, "AUDIT_CHECKPOINTS", "") and not getattr(
        settings, "AUDIT_CHECKPOINT_KEY", ""
    ):
        problems.append(
            Error(
                "SWITCHYARD_AUDIT_CHECKPOINTS is set but SWITCHYARD_AUDIT_KEY is not: the "
                "audit checkpoints cannot be signed.",
                hint="Set SWITCHYARD_AUDIT_KEY (or _FILE) to a long random secret (docs/audit.md).",
                id="switchyard.E013",
            )
        )
    exposed = sorted(set(settings.ALLOWED_HOSTS) - LOOPBACK)
    if not exposed or settings.SECRET_KEY == settings.DEV_SECRET_KEY:
        return problems  # loopback; or the unset key, which is E010
    where = ", ".join(exposed)
    for name, value in secrets_in_use().items():
        why = weakness(value)
        if why:
            problems.append(
                Error(
                    f"{name} is not a real secret while ALLOWED_HOSTS exposes Switchyard "
                    f"({where}): {why}.",
                    hint=f"Set {name} (or {name}_FILE) to a random value, e.g. "
                    '`python -c "import secrets; print(secrets.token_urlsafe(48))"`.',
                    id="switchyard.E011",
                )
            )
    if not getattr(settings, "METRICS_TOKEN", ""):
        problems.append(
            Error(
                f"/metrics is open to anyone while ALLOWED_HOSTS exposes Switchyard ({where}).",
                hint="Set SWITCHYARD_METRICS_TOKEN and give it to the Prometheus scraper "
                "(authorization: credentials).",
                id="switchyard.E012",
            )
        )
    return problems
