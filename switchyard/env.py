"""Small, typed helpers that read settings from the environment.

Each helper raises ``ImproperlyConfigured``-free ``ValueError`` with the variable's name, so that
``switchyard.checks`` can turn a bad value into a system check error instead of a stack trace.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlsplit

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def envstr(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def envint(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None


def envlist(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def envsecret(name: str, default: str = "") -> str:
    """Read NAME, or the contents of the file named by NAME_FILE (Docker/Kubernetes secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    return os.environ.get(name, default)


def parse_database_url(url: str, *, base_dir: str = ".") -> dict:
    """Turn ``postgres://user:pw@host:5432/name`` or ``sqlite:///path`` into a DATABASES entry."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("sqlite", "sqlite3"):
        # sqlite:///var/db.sqlite3 is relative to base_dir; sqlite:////srv/db.sqlite3 is absolute
        path = unquote(parts.path)[1:] if parts.path.startswith("/") else unquote(parts.path)
        if path in ("", ":memory:"):
            name = ":memory:"
        else:
            name = path if os.path.isabs(path) else os.path.join(base_dir, path)
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": name}
    if scheme in ("postgres", "postgresql", "pgsql", "postgis"):
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ValueError(f"DATABASE_URL has no database name: {url!r}")
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        config = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 0,
        }
        if options:
            config["OPTIONS"] = options
        return config
    raise ValueError(
        f"DATABASE_URL scheme {scheme!r} is not supported: use postgres://… or sqlite:///…"
    )
