"""The condition language of analysis metrics: small, safe, never ``eval``.

    canary < 0.01                      a threshold on the canary's value
    canary / baseline < 1.5            on the ratio (``ratio`` is the same)
    canary - baseline <= 0.02          on the difference (``difference`` is the same)
    result < 0.01 && baseline < 0.05   Argo's ``result`` (the canary's value), ``&&``/``||``/``!``

Numbers, the names ``canary``, ``baseline``, ``result``, ``ratio``, ``difference``, arithmetic
(``+ - * / %``, unary minus), comparisons (chains too), ``and``/``or``/``not`` (or ``&&``/``||``/
``!``), parentheses and the functions ``abs``, ``min``, ``max``, ``isNaN``, ``isInf``, ``asInt``,
``asFloat``. The text is parsed with Python's ``ast`` module and only those node types are walked;
anything else is refused when the template is saved, with a message naming it.

Argo Rollouts' forms over a query's result vector are read too: a measured value is a vector of one
element (none when there was no value, NaN), so ``result[0] >= 0.99``, ``len(result) > 0``,
``all(result, {# > 0.9})`` (also ``any``, ``none``, ``one``; ``#`` is the element) and
``default(result[0], 0)`` (the second value when the first is NaN) mean what they mean there.
An index past the end is NaN.

Arithmetic never raises: x / 0 is +inf for x > 0 (a canary with errors over a baseline with none
is infinitely worse), -inf for x < 0 and NaN for 0 / 0; every comparison with NaN is false.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

NAMES = ("canary", "baseline", "result", "ratio", "difference")
VECTORS = ("canary", "baseline", "result")  # the names Argo's vector forms may take
ITEM = "__item__"  # Argo's "#" inside a {closure}
PREDICATES = {"all": all, "any": any}
MAX_LENGTH = 500
MAX_NODES = 100
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "min": min,
    "max": max,
    "isNaN": lambda x: isinstance(x, float) and math.isnan(x),
    "isInf": lambda x: isinstance(x, float) and math.isinf(x),
    "asInt": lambda x: float(math.trunc(x)) if math.isfinite(x) else x,
    "asFloat": lambda x: x,
    "default": lambda x, fallback: fallback if isinstance(x, float) and math.isnan(x) else x,
    "len": None,  # over a vector name: evaluated in _eval
    "all": None,
    "any": None,
    "none": None,
    "one": None,
}
_CLOSURES = ("all", "any", "none", "one")
_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod)
_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.BinOp,
    *_BINARY,
    ast.Compare,
    *_COMPARE,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Call,
    ast.Subscript,
    ast.Set,
)


class InvalidExpression(ValueError):
    pass


def _translate(text: str) -> str:
    """Argo's ``&&``, ``||``, ``!``, ``#``, ``true`` and ``false`` as Python's ``and``, ``or``,
    ``not``, a name, 1 and 0, outside quoted text (which is kept as it is, to be refused as not
    a number)."""
    parts = re.split(r"""("[^"]*"|'[^']*')""", text)
    for index in range(0, len(parts), 2):
        part = parts[index].replace("&&", " and ").replace("||", " or ")
        part = re.sub(r"!(?!=)", " not ", part.replace("#", f" {ITEM} "))
        # Argo's true / false: a true/false measurement (the web provider's) is 1 / 0 here
        parts[index] = re.sub(r"\bfalse\b", "0", re.sub(r"\btrue\b", "1", part))
    return "".join(parts)


def parse(text: str) -> ast.Expression:
    """The checked syntax tree of ``text``; raises InvalidExpression saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidExpression("must be a non-empty expression, e.g. 'canary < 0.01'")
    if len(text) > MAX_LENGTH:
        raise InvalidExpression(f"is too long (at most {MAX_LENGTH} characters)")
    try:
        tree = ast.parse(_translate(text).strip(), mode="eval")
    except SyntaxError as exc:
        raise InvalidExpression(f"is not a valid expression: {exc.msg}") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise InvalidExpression(f"is too complex (at most {MAX_NODES} parts)")
    called = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
    closures, items = _check_vector_forms(nodes)
    for node in nodes:
        if isinstance(node, ast.Set) and id(node) not in closures:
            raise InvalidExpression(f"uses {{...}} outside all/any/none/one: {ast.unparse(node)!r}")
        if isinstance(node, ast.Name) and node.id == ITEM:
            if id(node) not in items:
                raise InvalidExpression("uses '#' outside a {...} of all/any/none/one")
            continue
        if not isinstance(node, _ALLOWED):
            shown = ast.unparse(node) if isinstance(node, ast.expr) else ""
            raise InvalidExpression(
                f"may not use {type(node).__name__}" + (f" ({shown!r})" if shown else "")
            )
        if isinstance(node, ast.Constant) and (
            isinstance(node.value, bool) or not isinstance(node.value, int | float)
        ):
            raise InvalidExpression(f"may only use numbers, not {node.value!r}")
        if isinstance(node, ast.Name) and node.id not in NAMES and node.id not in _FUNCTIONS:
            known = ", ".join(NAMES)
            raise InvalidExpression(f"uses an unknown name {node.id!r}: use {known}")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
                raise InvalidExpression(
                    f"may only call {', '.join(_FUNCTIONS)}, not {ast.unparse(node.func)!r}"
                )
            if node.keywords or not node.args:
                raise InvalidExpression(f"calls {node.func.id} with positional arguments only")
            want = _ARITY.get(node.func.id)
            if want is not None and len(node.args) != want:
                raise InvalidExpression(f"calls {node.func.id} with {want} argument(s)")
        if isinstance(node, ast.Name) and node.id in _FUNCTIONS and id(node) not in called:
            raise InvalidExpression(f"uses the function {node.id!r} without calling it")
    return tree


_ARITY = {"len": 1, "default": 2, "isNaN": 1, "isInf": 1, "asInt": 1, "asFloat": 1, "abs": 1}
_ARITY.update(dict.fromkeys(_CLOSURES, 2))


def _check_vector_forms(nodes: list[ast.AST]) -> tuple[set[int], set[int]]:
    """Check Argo's vector forms; return the ids of the {closures} and of the '#' inside them."""
    closures: set[int] = set()
    items: set[int] = set()
    for node in nodes:
        if isinstance(node, ast.Subscript):
            index = node.slice
            if not (
                isinstance(node.value, ast.Name)
                and node.value.id in VECTORS
                and isinstance(index, ast.Constant)
                and isinstance(index.value, int)
                and not isinstance(index.value, bool)
                and index.value >= 0
            ):
                raise InvalidExpression(
                    f"may only index {', '.join(VECTORS)} by a number, like result[0]; "
                    f"got {ast.unparse(node)!r}"
                )
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        name = node.func.id
        if name == "len" or name in _CLOSURES:
            first = node.args[0] if node.args else None
            if not (isinstance(first, ast.Name) and first.id in VECTORS):
                raise InvalidExpression(
                    f"{name}(...) takes {', '.join(VECTORS)} first, like {name}(result"
                    + (", {# > 0.9})" if name != "len" else ")")
                )
        if name in _CLOSURES and len(node.args) == 2:
            closure = node.args[1]
            if not (isinstance(closure, ast.Set) and len(closure.elts) == 1):
                raise InvalidExpression(f"{name}(result, {{...}}) takes one {{# ...}} condition")
            closures.add(id(closure))
            items.update(
                id(n) for n in ast.walk(closure) if isinstance(n, ast.Name) and n.id == ITEM
            )
    return closures, items


def _vector(value: float) -> list[float]:
    return [] if math.isnan(value) else [value]


def variables(canary: float | None, baseline: float | None) -> dict[str, float]:
    c = math.nan if canary is None else float(canary)
    b = math.nan if baseline is None else float(baseline)
    return {"canary": c, "baseline": b, "result": c, "ratio": _div(c, b), "difference": c - b}


def evaluate(text_or_tree: str | ast.Expression, names: Mapping[str, float]) -> bool:
    tree = parse(text_or_tree) if isinstance(text_or_tree, str) else text_or_tree
    return bool(_eval(tree.body, names))


def _div(a: float, b: float) -> float:
    if b == 0:
        if math.isnan(a) or a == 0:
            return math.nan
        return math.copysign(math.inf, a) * (1 if math.copysign(1, b) > 0 else -1)
    return a / b


def _eval(node: ast.AST, names: Mapping[str, float]) -> Any:
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, ast.BoolOp):
        results = (bool(_eval(v, names)) for v in node.values)
        return all(results) if isinstance(node.op, ast.And) else any(results)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, names)
        if isinstance(node.op, ast.Not):
            return not value
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left, names), _eval(node.right, names)
        if isinstance(node.op, ast.Div):
            return _div(a, b)
        if isinstance(node.op, ast.Mod):
            return math.nan if b == 0 else math.fmod(a, b)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        return a * b
    if isinstance(node, ast.Compare):
        left = _eval(node.left, names)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, names)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Subscript):
        vector = _vector(names[node.value.id])  # type: ignore[attr-defined]
        index = node.slice.value  # type: ignore[attr-defined]
        return vector[index] if index < len(vector) else math.nan
    if isinstance(node, ast.Call):
        name = node.func.id  # type: ignore[attr-defined]
        if name == "len":
            return float(len(_vector(names[node.args[0].id])))  # type: ignore[attr-defined]
        if name in _CLOSURES:
            vector = _vector(names[node.args[0].id])  # type: ignore[attr-defined]
            condition = node.args[1].elts[0]  # type: ignore[attr-defined]
            results = [bool(_eval(condition, {**names, ITEM: item})) for item in vector]
            if name == "one":
                return sum(results) == 1
            if name == "none":
                return not any(results)
            return PREDICATES[name](results)
        args = [_eval(a, names) for a in node.args]
        return _FUNCTIONS[name](*args)
    raise InvalidExpression(f"may not use {type(node).__name__}")  # pragma: no cover
