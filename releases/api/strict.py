"""Strict JSON types for request bodies: what the OpenAPI document says is what is accepted.

pydantic's lax mode turns ``false`` into ``0``, ``"3"`` into ``3`` and ``1`` into ``true``; for
a JSON API that is a silent misreading (``{"order": false}`` stored ``order: 0``). :func:`check`
is run by ``releases.api.schemas.In`` before every field's own validation: an integer field
takes a JSON integer (``3``, or ``3.0`` as JSON Schema allows), a number field a JSON number, a
boolean field ``true`` or ``false``, a date, time or date-time field a string (pydantic would
read ``0`` as the Unix epoch) -- inside lists and optionals too. Anything else is a 422
naming the field.
"""

from __future__ import annotations

import datetime
import enum
import types
import typing
from typing import Any, get_args, get_origin

NOT_INT = "must be a whole number (a JSON integer, not {kind})"
NOT_NUMBER = "must be a number (not {kind})"
NOT_BOOL = "must be true or false (not {kind})"
NOT_TIME = "must be an ISO 8601 string (not {kind})"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, float):
        return "a decimal number"
    return type(value).__name__


def check(value: Any, annotation: Any) -> None:
    """Raise ValueError when ``value`` (parsed JSON) is not strictly of ``annotation``."""
    if value is None or annotation is Any:
        return
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return check(value, get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if len(options) == 1:
            check(value, options[0])
        return  # a real union: leave it to pydantic
    if origin in (list, tuple, set, frozenset) and isinstance(value, list):
        args = get_args(annotation)
        if args:
            for item in value:
                check(item, args[0])
        return
    if not isinstance(annotation, type) or issubclass(annotation, enum.Enum):
        return
    if annotation is bool:
        if not isinstance(value, bool):
            raise ValueError(NOT_BOOL.format(kind=_kind(value)))
    elif issubclass(annotation, int):
        # JSON Schema's "integer" includes 3.0 (a number with no fraction): pydantic takes it
        integral = isinstance(value, float) and value.is_integer()
        if type(value) is not int and not integral:
            raise ValueError(NOT_INT.format(kind=_kind(value)))
    elif issubclass(annotation, (datetime.date, datetime.time)):
        if not isinstance(value, str):
            raise ValueError(NOT_TIME.format(kind=_kind(value)))
    elif annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(NOT_NUMBER.format(kind=_kind(value)))
