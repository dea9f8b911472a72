"""Validating a strategy spec (``strategies.spec.normalise``) into an ``InvalidSpec`` that lists
every bad field by path, the analysis templates it names among them."""

from __future__ import annotations

from integrations import registry
from releases.analysis.templates import builtin_spec
from releases.errors import InvalidSpec
from releases.models import AnalysisTemplate
from strategies import codedeploy
from strategies.analysis.template import TemplateError, resolve_args
from strategies.analysis.template import normalise as normalise_template
from strategies.spec import SpecError, normalise, required_capabilities


def validate_strategy(
    raw: dict, *, provider: str | None = None, config: dict | None = None
) -> dict:
    """Normalise a strategy spec or raise InvalidSpec listing every bad field (an analysis
    template it names that does not exist, or whose arguments do not fit, among them). With a
    ``provider``, a spec whose routing needs a capability that provider lacks is refused too,
    naming the capability: before anything starts, never mid-tick. With a target's ``config``
    too, what that target can do (a kubernetes target's router) decides."""
    if not isinstance(raw, dict):
        raise InvalidSpec(
            "The strategy must be a JSON object.",
            details={"errors": [{"path": "", "message": "must be an object"}]},
        )
    try:
        if codedeploy.is_codedeploy(raw):  # {"codedeploy": "ECSCanary10Percent5Minutes"}
            errors: list = []
            raw = codedeploy.translate(raw, errors) or {}
            if errors:
                raise SpecError(errors)
        spec = normalise(raw, templates=_check_analysis_template)
    except SpecError as exc:
        errors = [{"path": e.path, "message": e.message} for e in exc.errors]
        first = errors[0] if errors else {"path": "", "message": str(exc)}
        where = f" at {first['path']}" if first["path"] else ""
        raise InvalidSpec(
            f"The strategy is invalid{where}: {first['message']}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            details={"errors": errors},
        ) from None
    if provider is not None:
        check_capabilities(spec, provider, config)
    return spec


def check_capabilities(spec: dict, provider: str, config: dict | None = None) -> None:
    missing = registry.missing_capabilities(provider, required_capabilities(spec), config)
    if missing:
        cannot = registry.describe_missing(provider, missing)
        where = registry.describe(provider, config) if config is not None else ""
        cannot += f" (this target: {where})" if where else ""
        message = f"The strategy needs what the target cannot do: {cannot}."
        raise InvalidSpec(
            message,
            details={
                "errors": [{"path": "kind", "message": message}],
                "missing_capabilities": missing,
                "provider": provider,
            },
        )


def _check_analysis_template(name: str, args: dict[str, str]) -> list[tuple[str, str]]:
    """What is wrong with running the analysis template ``name`` with ``args`` (a spec's
    analysis reference): [(path under the reference, message)], [] if it can run."""
    template = AnalysisTemplate.objects.filter(name=name).first()
    spec = template.spec if template is not None else builtin_spec(name)
    if spec is None:
        return [
            (
                "template",
                f"there is no analysis template {name!r} (create it with PUT "
                f"/api/v1/analysis-templates/{name})",
            )
        ]
    try:
        resolve_args(normalise_template(spec), args)
    except TemplateError as exc:
        return [(error.path, error.message) for error in exc.errors]
    return []
