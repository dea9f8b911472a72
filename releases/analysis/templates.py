"""Analysis templates: validating (``strategies.analysis.template`` checks the spec and lists
every problem by path), reading and saving them. A run keeps a snapshot of its template, so a
template changed mid-rollout changes nothing already started."""

from __future__ import annotations

from typing import Any

from releases.errors import DomainError, NotFound
from releases.models.analysis import (
    AnalysisTemplate,
)
from strategies import flagger
from strategies.analysis.template import TemplateError, normalise

# templates Switchyard ships, stored the first time a run needs one (and then like any other:
# an admin may replace it): Flagger's built-in metrics and its webhooks (strategies.flagger)
BUILTIN: dict[str, tuple[str, dict[str, Any]]] = {
    flagger.BUILTIN_TEMPLATE: (flagger.BUILTIN_TEMPLATE_DESCRIPTION, flagger.BUILTIN_TEMPLATE_SPEC),
    **flagger.HOOK_TEMPLATES,
}


class InvalidTemplate(DomainError):
    status = 422
    code = "invalid_template"


def invalid_template(exc: TemplateError, what: str) -> InvalidTemplate:
    errors = exc.as_dicts()
    first = errors[0]
    where = f" at {first['path']}" if first["path"] else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return InvalidTemplate(f"{what}{where}: {first['message']}{more}.", details={"errors": errors})


# --- templates -----------------------------------------------------------------------------------


def validate_template(spec: Any) -> dict:
    """The normalised template, or InvalidTemplate (422) listing every problem by path."""
    try:
        return normalise(spec)
    except TemplateError as exc:
        raise invalid_template(exc, "The analysis template is invalid") from None


def builtin_spec(name: str) -> dict[str, Any] | None:
    """The normalised spec of the built-in template ``name``, None if there is none."""
    return normalise(BUILTIN[name][1]) if name in BUILTIN else None


def get_template(name: str) -> AnalysisTemplate:
    template = AnalysisTemplate.objects.filter(name=name).first()
    if template is None and name in BUILTIN:
        template, _ = AnalysisTemplate.objects.get_or_create(
            name=name, defaults={"description": BUILTIN[name][0], "spec": builtin_spec(name)}
        )
    if template is None:
        raise NotFound(f"There is no analysis template {name!r}.", details={"template": name})
    return template


def save_template(name: str, spec: Any, description: str = "") -> tuple[AnalysisTemplate, bool]:
    """Create or replace the template ``name`` (runs already started keep their snapshot)."""
    normalised = validate_template(spec)
    template, created = AnalysisTemplate.objects.update_or_create(
        name=name, defaults={"spec": normalised, "description": description}
    )
    return template, created
