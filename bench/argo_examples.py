"""How many of the vendored Argo Rollouts documents the spec readers accept.

Run from the repository root: ``python -m bench.argo_examples [--legacy]``. Each Rollout is fed the
way the readers of the day take it (``--legacy``: only ``spec.strategy`` plus ``spec.replicas``,
as a migrating user had to cut it out; default: the whole manifest as pasted) and each
AnalysisTemplate its ``spec`` (legacy) or the whole document. Prints one line per document and
the totals.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from strategies.analysis import template
from strategies.spec import SpecError, normalise

FOLDER = Path(__file__).resolve().parent.parent / "tests" / "strategies" / "argo_examples"
KINDS = ("Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate")


def documents():
    for path in sorted(FOLDER.glob("*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if isinstance(doc, dict) and doc.get("kind") in KINDS:
                yield f"{path.stem}#{index}", doc


def legacy_input(doc):
    if doc["kind"] == "Rollout":
        spec = doc["spec"]
        raw = {k: v for k, v in spec["strategy"].items() if k != "type"}
        if "replicas" in spec:
            raw["replicas"] = spec["replicas"]
        return raw
    return doc["spec"]


def main(legacy: bool) -> None:
    accepted = refused = 0
    for name, doc in documents():
        raw = legacy_input(doc) if legacy else doc
        try:
            if doc["kind"] == "Rollout":
                normalise(raw)
            elif legacy:
                template.normalise(raw)
            else:
                from strategies.analysis import argo_template

                argo_template.normalise(raw)
            accepted += 1
            print(f"accepted  {name}")
        except SpecError as exc:
            refused += 1
            print(f"refused   {name}: {exc}")
    print(f"\n{accepted + refused} documents: {accepted} accepted, {refused} refused")


if __name__ == "__main__":
    main(legacy="--legacy" in sys.argv)
