"""Helpers for reading Argo Rollouts' strategy syntax (``{"canary": {...}}``,
``{"blueGreen": {...}}``): a ``Translation`` is our raw spec plus where each part came from, so
an error found while reading ours names the key the user actually wrote."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strategies.fields import FieldError, show


@dataclass
class Translation:
    spec: dict[str, Any]  # our format, still raw (the kind's reader validates it)
    # (path in ours, path in the user's Argo spec): longest matching prefix wins
    paths: list[tuple[str, str]] = field(default_factory=list)
    kind: str | None = None  # the kind to read it as, when not the one asked for

    def move(self, ours: str, value: Any, theirs: str, errors: list[FieldError]) -> None:
        """Put ``value`` (written at ``theirs``) under our top-level key ``ours``."""
        if ours in self.spec:
            errors.append(
                FieldError(theirs, f"is given twice: here and as {show(ours)}; keep one of them")
            )
            return
        self.spec[ours] = value
        self.paths.append((ours, theirs))


def repath(errors: list[FieldError], paths: list[tuple[str, str]]) -> list[FieldError]:
    """``errors`` with paths in our format rewritten to where the user wrote the value."""
    ordered = sorted(paths, key=lambda pair: len(pair[0]), reverse=True)
    out = []
    for error in errors:
        for ours, theirs in ordered:
            if error.path == ours or error.path.startswith((ours + ".", ours + "[")):
                error = FieldError(theirs + error.path[len(ours) :], error.message)
                break
        out.append(error)
    return out


def block_of(raw: dict[str, Any], key: str, errors: list[FieldError]) -> dict[str, Any] | None:
    """The object under the Argo strategy key, or None after recording why it is not one."""
    block = raw[key]
    if not isinstance(block, dict):
        errors.append(FieldError(key, f"must be an object, got {show(block)}"))
        return None
    return block


def flag(value: Any, path: str, errors: list[FieldError]) -> bool | None:
    if isinstance(value, bool):
        return value
    errors.append(FieldError(path, f"must be true or false, got {show(value)}"))
    return None
