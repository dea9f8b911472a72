"""Validating a strategy spec (``strategies.spec.normalise``) into an ``InvalidSpec`` that lists
every bad field by path, the analysis templates it names among them."""

from __future__ import annotations

from releases.errors import (
    InvalidSpec,
)
from strategies.spec import SpecError, normalise


def validate_strategy(raw: dict) -> dict:
    """Normalise a strategy spec or raise InvalidSpec listing every bad field (an analysis
    template it names that does not exist, or whose arguments do not fit, among them)."""
    if not isinstance(raw, dict):
        raise InvalidSpec(
            "The strategy must be a JSON object.",
            details={"errors": [{"path": "", "message": "must be an object"}]},
        )
    try:
        return normalise(raw, templates=_check_analysis_template)
    except SpecError as exc:
        errors = [{"path": e.path, "message": e.message} for e in exc.errors]
        first = errors[0] if errors else {"path": "", "message": str(exc)}
        where = f" at {first['path']}" if first["path"] else ""
        raise InvalidSpec(
            f"The strategy is invalid{where}: {first['message']}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            details={"errors": errors},
        ) from None


def _check_analysis_template(name: str, args: dict[str, str]) -> list[tuple[str, str]]:
    """What is wrong with running the analysis template ``name`` with ``args`` (a spec's
    analysis reference): [(path under the reference, message)], [] if it can run."""
    from releases.models.analysis import AnalysisTemplate
    from strategies.analysis.template import TemplateError, resolve_args
    from strategies.analysis.template import normalise as normalise_template

    template = AnalysisTemplate.objects.filter(name=name).first()
    if template is None:
        return [
            (
                "template",
                f"there is no analysis template {name!r} (create it with PUT "
                f"/api/v1/analysis-templates/{name})",
            )
        ]
    try:
        resolve_args(normalise_template(template.spec), args)
    except TemplateError as exc:
        return [(error.path, error.message) for error in exc.errors]
    return []
