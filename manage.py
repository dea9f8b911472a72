#!/usr/bin/env python
import os
import re
import sys


def database_hint(exc: Exception) -> str | None:
    """What to do when a command meets a database without Switchyard's tables (often another
    DATABASE_URL than the server's) or no database at all; None for any other error."""
    from django.conf import settings

    text = str(exc)
    db = settings.DATABASES["default"]
    url = re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", os.environ.get("DATABASE_URL", ""))
    where = f"DATABASE_URL={url}" if url else f"the default database ({db['NAME']})"
    if "no such table" in text or re.search(r"relation .* does not exist", text):
        return (
            f"error: {where} has no Switchyard tables ({text.strip().splitlines()[0]}).\n"
            "  This command talks to the database DATABASE_URL names; the server you mean may\n"
            "  use another one. Either run it with the server's DATABASE_URL (`make demo` uses\n"
            "  the default, var/switchyard.sqlite3: unset DATABASE_URL), or set this database\n"
            "  up first: .venv/bin/python manage.py migrate\n"
        )
    if "could not connect" in text or "Connection refused" in text or "unable to open" in text:
        return (
            f"error: cannot reach {where}: {text.strip().splitlines()[0]}\n"
            "  Is the database running, and is DATABASE_URL the one the server uses?\n"
        )
    return None


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "switchyard.settings")
    from django.core.management import execute_from_command_line
    from django.db import DatabaseError

    try:
        execute_from_command_line(sys.argv)
    except DatabaseError as exc:
        hint = database_hint(exc)
        if hint is None:
            raise
        sys.stderr.write(hint)
        sys.exit(1)


if __name__ == "__main__":
    main()
